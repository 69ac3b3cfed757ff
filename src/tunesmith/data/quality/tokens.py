"""Lengths and the chat template, exactly as training will see them: token-length histogram with the
real tokenizer, records that would be truncated (and the tokens lost), samples with nothing to train
or whose trained span does not end with the end-of-turn token, special tokens typed as literal text,
and a render → tokenize → decode round trip."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunesmith.data.quality.items import Item
from tunesmith.data.quality.report import Report
from tunesmith.data.records import Conversation, TextDocument
from tunesmith.data.templates import IGNORE, build_renderer, tokenize_conversation

if TYPE_CHECKING:
    from tunesmith.config import RunConfig

BUCKETS = (64, 128, 256, 512, 1024, 2048, 4096)


class TokenCheck:
    """Streaming: per record only its bucket in the length histogram (and the flagged indices)."""

    def __init__(self, cfg: RunConfig, tokenizer: Any) -> None:
        self.cfg, self.tokenizer = cfg, tokenizer
        self.renderer = build_renderer(tokenizer, cfg.data.chat_template)
        self.specials = [t for t in tokenizer.all_special_tokens if len(t) > 2]
        self.buckets: dict[str, float] = {}
        self.longest, self.total_tokens, self.counted = 0, 0, 0
        self.too_long: list[int] = []
        self.untrained: list[int] = []
        self.no_stop: list[int] = []
        self.literal: list[int] = []
        self.round_trip: list[int] = []
        self.lost = 0

    def count(self, length: int) -> None:
        label = bucket_label(length)
        self.buckets[label] = self.buckets.get(label, 0) + 1
        self.longest = max(self.longest, length)
        self.total_tokens += length
        self.counted += 1

    def add(self, item: Item) -> None:
        record, max_length = item.record, self.cfg.data.max_length
        if isinstance(record, TextDocument):
            self.count(len(self.tokenizer(record.text, add_special_tokens=False)["input_ids"]))
            return
        if not isinstance(record, Conversation):
            return
        if any(s in text for s in self.specials for text in item.texts.values()):
            self.literal.append(item.index)
        sample = tokenize_conversation(record, self.renderer, self.cfg.data.train_on_prompt)
        self.count(len(sample))
        if len(sample) > max_length:
            self.too_long.append(item.index)
            self.lost += len(sample) - max_length
        trained = [label for label in sample.labels[:max_length][1:] if label != IGNORE]
        if not trained:
            self.untrained.append(item.index)
        elif trained[-1] != self.renderer.end_of_turn_id:
            self.no_stop.append(item.index)
        decoded = self.tokenizer.decode(sample.input_ids)
        if any(m.content.strip() and m.content.strip() not in decoded for m in record.messages):
            self.round_trip.append(item.index)

    def finish(self, report: Report) -> None:
        max_length = self.cfg.data.max_length
        report.sections["too_long"] = self.too_long
        report.sections["tokens_lost"] = self.lost
        report.sections["token_lengths"] = {
            "max": self.longest,
            "mean": self.total_tokens / max(self.counted, 1),
        }
        order = [*(f"≤{b}" for b in BUCKETS), f">{BUCKETS[-1]}"]
        report.charts["token lengths"] = {
            label: self.buckets[label] for label in order if label in self.buckets
        }
        for found, severity, what in (
            (
                self.too_long,
                "warning",
                f"records longer than data.max_length={max_length} ({self.lost} tokens would be cut)",
            ),
            (self.untrained, "error", "records with no trainable token after masking and truncation"),
            (
                self.no_stop,
                "warning",
                "records whose trained span does not end with the end-of-turn token (truncated answers)",
            ),
            (self.literal, "warning", "records that contain a special token as literal text"),
            (self.round_trip, "warning", "records that do not survive render → tokenize → decode"),
        ):
            if found:
                report.add("template", severity, f"{len(found)} {what}", found)


def bucket_label(length: int) -> str:
    bucket = next((b for b in BUCKETS if length <= b), None)
    return f"≤{bucket}" if bucket else f">{BUCKETS[-1]}"
