"""Structure: rows that do not parse or convert, empty fields, encoding damage (mojibake, detected and
fixed by `ftfy`), control characters, conversation order, and labels (balance, identical pairs)."""

from __future__ import annotations

import re
from collections import Counter

from tunesmith.data.quality.items import Item
from tunesmith.data.quality.report import Report
from tunesmith.data.records import Conversation, LabeledText, PreferencePair

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_structure(items: list[Item], report: Report) -> None:
    broken = [i for i in items if i.problem is not None]
    for item in broken[:20]:
        report.add("structure", "error", f"{item.where}: {item.problem}", [item.index])
    if len(broken) > 20:
        report.add(
            "structure",
            "error",
            f"{len(broken) - 20} more records cannot be read",
            [i.index for i in broken[20:]],
        )
    empty = [
        {"record": i.index, "field": name}
        for i in items
        for name, text in i.texts.items()
        if not text.strip()
    ]
    report.sections["empty_fields"] = empty
    if empty:
        report.add(
            "structure",
            "warning",
            f"{len(empty)} empty or whitespace-only fields",
            [e["record"] for e in empty],
        )
    check_encoding(items, report)
    check_conversations(items, report)


def check_encoding(items: list[Item], report: Report) -> None:
    import ftfy

    # pure ASCII cannot be mojibake: only other texts go through ftfy (the slow part of the check)
    mojibake = [
        i.index
        for i in items
        if any(ftfy.fix_text(t) != t for t in i.texts.values() if t and not t.isascii())
    ]
    control = [i.index for i in items if any(CONTROL.search(t) for t in i.texts.values())]
    report.sections["encoding_damage"] = mojibake
    report.sections["control_characters"] = control
    if mojibake:
        report.add(
            "encoding",
            "warning",
            f"{len(mojibake)} records with encoding damage (mojibake); --fix repairs them",
            mojibake,
        )
    if control:
        report.add("encoding", "warning", f"{len(control)} records with control characters", control)


def check_conversations(items: list[Item], report: Report) -> None:
    out_of_order, empty_answer, parroting = [], [], []
    for item in items:
        record = item.record
        if not isinstance(record, Conversation):
            continue
        roles = [m.role for m in record.messages if m.role != "system"]
        if any(a == b for a, b in zip(roles, roles[1:], strict=False)) or (roles and roles[0] != "user"):
            out_of_order.append(item.index)
        answers = [m for m in record.messages if m.role == "assistant"]
        if any(not m.content.strip() for m in answers):
            empty_answer.append(item.index)
        prompts = {m.content.strip() for m in record.messages if m.role == "user"}
        if any(m.content.strip() in prompts for m in answers):
            parroting.append(item.index)
    report.sections["conversation_order"] = out_of_order
    for found, severity, what in (
        (
            out_of_order,
            "warning",
            "conversations whose turns are out of order (not user, assistant, user, ...)",
        ),
        (empty_answer, "error", "conversations with an empty assistant turn"),
        (parroting, "warning", "conversations where the assistant repeats the prompt"),
    ):
        if found:
            report.add("conversation", severity, f"{len(found)} {what}", found)


def check_labels(train: list[Item], held: list[Item] | None, report: Report) -> None:
    labels = Counter(str(i.record.label) for i in train if isinstance(i.record, LabeledText))
    if labels:
        report.sections["labels"] = dict(labels)
        report.charts["class balance"] = {k: float(v) for k, v in labels.items()}
        largest, smallest = max(labels.values()), min(labels.values())
        if smallest * 10 < largest:
            report.add("labels", "warning", f"class imbalance: largest class {largest}, smallest {smallest}")
        unseen = [
            i.index
            for i in held or []
            if isinstance(i.record, LabeledText) and str(i.record.label) not in labels
        ]
        if unseen:
            report.add(
                "labels", "error", f"{len(unseen)} eval records have labels never seen in training", unseen
            )
    same = [
        i.index
        for i in train
        if isinstance(i.record, PreferencePair) and i.record.chosen.strip() == i.record.rejected.strip()
    ]
    if same:
        report.add("labels", "error", f"{len(same)} preference pairs with identical sides", same)
