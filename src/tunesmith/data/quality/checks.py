"""Run the checks over a train file (and an eval file) → one Report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.config import RunConfig
from tunesmith.data.quality.bias_signals import check_bias_signals
from tunesmith.data.quality.duplicates import check_duplicates
from tunesmith.data.quality.items import Item, load_items
from tunesmith.data.quality.language import check_languages
from tunesmith.data.quality.leakage import check_leakage
from tunesmith.data.quality.pii import check_pii
from tunesmith.data.quality.report import Report
from tunesmith.data.quality.structure import check_labels, check_structure
from tunesmith.data.quality.text import fingerprint
from tunesmith.data.quality.tokens import check_tokens


@dataclass
class CheckOptions:
    near_threshold: float = 0.8
    shingle_words: int = 5
    ngram: int = 13
    language: str | None = None
    fast: bool = False  # only the cheap checks (what `train` runs before every run)


def record_format(cfg: RunConfig | None) -> tuple[str, dict[str, str]]:
    """The record format and column mapping the run's task reads its data with."""
    if cfg is None:
        return "auto", {}
    if cfg.task.name == "classification":
        columns = {"text": cfg.data.text_field, "label": cfg.data.label_field}
        if cfg.data.text_pair_field:
            columns["text_pair"] = cfg.data.text_pair_field
        return "classification", columns
    return cfg.data.format, dict(cfg.data.columns)


def run_checks(
    train_path: Path, eval_path: Path | None, cfg: RunConfig | None, tokenizer: Any, options: CheckOptions
) -> tuple[Report, list[Item]]:
    fmt, columns = record_format(cfg)
    items = load_items(train_path, fmt, columns)
    report = Report(records=len(items))
    held = load_items(eval_path, fmt, columns) if eval_path is not None else None
    if held is not None and [fingerprint(i.joined()) for i in held] == [
        fingerprint(i.joined()) for i in items
    ]:
        message = f"the eval file {eval_path} holds exactly the training records; held-out data must differ"
        report.add("leakage", "error", message)
    check_structure(items, report)
    check_labels(items, held, report)
    check_duplicates(items, report, options.near_threshold, options.shingle_words)
    if held is not None:
        check_leakage(items, held, report, options.near_threshold, options.ngram)
    else:
        report.sections["leakage"] = []
    if options.fast:
        return report, items
    check_pii(items, report)
    check_bias_signals(items, report)
    check_languages(items, report, options.language)
    if tokenizer is not None and cfg is not None:
        check_tokens(items, report, cfg, tokenizer)
    else:
        report.sections["too_long"] = None
    return report, items
