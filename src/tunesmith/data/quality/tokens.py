"""Lengths and the chat template, exactly as training will see them: token-length histogram with the
real tokenizer, records that would be truncated (and the tokens lost), samples with nothing to train
or whose trained span does not end with the end-of-turn token, special tokens typed as literal text,
and a render → tokenize → decode round trip."""

from __future__ import annotations

from typing import Any

from tunesmith.config import RunConfig
from tunesmith.data.quality.items import Item
from tunesmith.data.quality.report import Report
from tunesmith.data.records import Conversation, TextDocument
from tunesmith.data.templates import IGNORE, build_renderer, tokenize_conversation

BUCKETS = (64, 128, 256, 512, 1024, 2048, 4096)


def check_tokens(items: list[Item], report: Report, cfg: RunConfig, tokenizer: Any) -> None:
    renderer = build_renderer(tokenizer, cfg.data.chat_template)
    specials = [t for t in tokenizer.all_special_tokens if len(t) > 2]
    lengths: dict[int, int] = {}
    too_long, untrained, no_stop, literal, round_trip = [], [], [], [], []
    lost = 0
    for item in items:
        record = item.record
        if isinstance(record, TextDocument):
            lengths[item.index] = len(tokenizer(record.text, add_special_tokens=False)["input_ids"])
            continue
        if not isinstance(record, Conversation):
            continue
        if any(s in text for s in specials for text in item.texts.values()):
            literal.append(item.index)
        sample = tokenize_conversation(record, renderer, cfg.data.train_on_prompt)
        lengths[item.index] = len(sample)
        if len(sample) > cfg.data.max_length:
            too_long.append(item.index)
            lost += len(sample) - cfg.data.max_length
        kept = sample.labels[: cfg.data.max_length]
        trained = [label for label in kept[1:] if label != IGNORE]
        if not trained:
            untrained.append(item.index)
        elif trained[-1] != renderer.end_of_turn_id:
            no_stop.append(item.index)
        decoded = tokenizer.decode(sample.input_ids)
        if any(m.content.strip() and m.content.strip() not in decoded for m in record.messages):
            round_trip.append(item.index)
    report.sections["too_long"] = too_long
    report.sections["tokens_lost"] = lost
    report.sections["token_lengths"] = {
        "max": max(lengths.values(), default=0),
        "mean": sum(lengths.values()) / max(len(lengths), 1),
    }
    report.charts["token lengths"] = histogram(list(lengths.values()))
    for found, severity, what in (
        (
            too_long,
            "warning",
            f"records longer than data.max_length={cfg.data.max_length} ({lost} tokens would be cut)",
        ),
        (untrained, "error", "records with no trainable token after masking and truncation"),
        (
            no_stop,
            "warning",
            "records whose trained span does not end with the end-of-turn token (truncated answers)",
        ),
        (literal, "warning", "records that contain a special token as literal text"),
        (round_trip, "warning", "records that do not survive render → tokenize → decode"),
    ):
        if found:
            report.add("template", severity, f"{len(found)} {what}", found)


def histogram(lengths: list[int]) -> dict[str, float]:
    counts: dict[str, float] = {}
    for length in lengths:
        bucket = next((b for b in BUCKETS if length <= b), None)
        label = f"≤{bucket}" if bucket else f">{BUCKETS[-1]}"
        counts[label] = counts.get(label, 0) + 1
    return {
        label: counts[label] for label in [*(f"≤{b}" for b in BUCKETS), f">{BUCKETS[-1]}"] if label in counts
    }
