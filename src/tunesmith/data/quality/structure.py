"""Structure: rows that do not parse or convert, empty fields, encoding damage (mojibake, detected and
fixed by `ftfy`), control characters, conversation order, and labels (balance, identical pairs).
Streaming: each check keeps the indices of the records it flags, nothing else."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import ftfy

from tunesmith.data.quality.items import Item
from tunesmith.data.quality.report import Report
from tunesmith.data.records import Conversation, LabeledText, PreferencePair

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class StructureCheck:
    broken: list[tuple[int, str]] = field(default_factory=list)  # (record, "file:line: problem")
    empty: list[dict[str, object]] = field(default_factory=list)
    mojibake: list[int] = field(default_factory=list)
    control: list[int] = field(default_factory=list)
    out_of_order: list[int] = field(default_factory=list)
    empty_answer: list[int] = field(default_factory=list)
    parroting: list[int] = field(default_factory=list)

    def add(self, item: Item) -> None:
        if item.problem is not None:
            self.broken.append((item.index, f"{item.where}: {item.problem}"))
        self.empty += [
            {"record": item.index, "field": name} for name, text in item.texts.items() if not text.strip()
        ]
        # pure ASCII cannot be mojibake: only other texts go through ftfy (the slow part of the check)
        if any(ftfy.fix_text(t) != t for t in item.texts.values() if t and not t.isascii()):
            self.mojibake.append(item.index)
        if any(CONTROL.search(t) for t in item.texts.values()):
            self.control.append(item.index)
        if isinstance(item.record, Conversation):
            self.add_conversation(item.index, item.record)

    def add_conversation(self, index: int, record: Conversation) -> None:
        roles = [m.role for m in record.messages if m.role != "system"]
        if any(a == b for a, b in zip(roles, roles[1:], strict=False)) or (roles and roles[0] != "user"):
            self.out_of_order.append(index)
        answers = [m for m in record.messages if m.role == "assistant"]
        if any(not m.content.strip() for m in answers):
            self.empty_answer.append(index)
        prompts = {m.content.strip() for m in record.messages if m.role == "user"}
        if any(m.content.strip() in prompts for m in answers):
            self.parroting.append(index)

    def finish(self, report: Report) -> None:
        for index, message in self.broken[:20]:
            report.add("structure", "error", message, [index])
        if len(self.broken) > 20:
            rest = [index for index, _ in self.broken[20:]]
            report.add("structure", "error", f"{len(rest)} more records cannot be read", rest)
        report.sections["unreadable"] = [index for index, _ in self.broken]
        report.sections["empty_fields"] = self.empty
        if self.empty:
            report.add(
                "structure",
                "warning",
                f"{len(self.empty)} empty or whitespace-only fields",
                [e["record"] for e in self.empty],
            )
        report.sections["encoding_damage"] = self.mojibake
        report.sections["control_characters"] = self.control
        report.sections["conversation_order"] = self.out_of_order
        for found, check, severity, what in (
            (
                self.mojibake,
                "encoding",
                "warning",
                "records with encoding damage (mojibake); --fix repairs them",
            ),
            (self.control, "encoding", "warning", "records with control characters"),
            (
                self.out_of_order,
                "conversation",
                "warning",
                "conversations whose turns are out of order (not user, assistant, user, ...)",
            ),
            (self.empty_answer, "conversation", "error", "conversations with an empty assistant turn"),
            (
                self.parroting,
                "conversation",
                "warning",
                "conversations where the assistant repeats the prompt",
            ),
        ):
            if found:
                report.add(check, severity, f"{len(found)} {what}", found)


class LabelCheck:
    """Class balance, eval labels never seen in training, preference pairs with identical sides."""

    def __init__(self, held: list[Item] | None) -> None:
        self.held = held
        self.labels: Counter[str] = Counter()
        self.same_sides: list[int] = []

    def add(self, item: Item) -> None:
        record = item.record
        if isinstance(record, LabeledText):
            self.labels[str(record.label)] += 1
        elif isinstance(record, PreferencePair) and record.chosen.strip() == record.rejected.strip():
            self.same_sides.append(item.index)

    def finish(self, report: Report) -> None:
        labels = self.labels
        if labels:
            report.sections["labels"] = dict(labels)
            report.charts["class balance"] = {k: float(v) for k, v in labels.items()}
            largest, smallest = max(labels.values()), min(labels.values())
            if smallest * 10 < largest:
                report.add(
                    "labels", "warning", f"class imbalance: largest class {largest}, smallest {smallest}"
                )
            unseen = [
                i.index
                for i in self.held or []
                if isinstance(i.record, LabeledText) and str(i.record.label) not in labels
            ]
            if unseen:
                report.add(
                    "labels",
                    "error",
                    f"{len(unseen)} eval records have labels never seen in training",
                    unseen,
                )
        if self.same_sides:
            report.add(
                "labels",
                "error",
                f"{len(self.same_sides)} preference pairs with identical sides",
                self.same_sides,
            )
