"""Run the checks over a train file (and an eval file) → one Report.

Every check is a streaming accumulator (`add` one item, `finish` into the report): the training file is
read once, item by item, and no check holds the records themselves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tunesmith.data.quality.bias_signals import BiasSignalCheck
from tunesmith.data.quality.duplicates import DuplicateCheck
from tunesmith.data.quality.items import Item, iter_items, load_items
from tunesmith.data.quality.language import LanguageCheck
from tunesmith.data.quality.leakage import LeakageCheck
from tunesmith.data.quality.pii import PiiCheck
from tunesmith.data.quality.report import Report
from tunesmith.data.quality.structure import LabelCheck, StructureCheck
from tunesmith.data.quality.tokens import TokenCheck

if TYPE_CHECKING:
    from tunesmith.config import RunConfig


class Check(Protocol):
    def add(self, item: Item) -> None: ...

    def finish(self, report: Report) -> None: ...


@dataclass
class CheckOptions:
    near_threshold: float = 0.8
    shingle_chars: int = 5
    ngram: int = 13
    language: str | None = None
    fast: bool = False  # only the cheap checks (what `train` runs before every run)
    languages: bool = True  # the language check (the slowest after the tokenizer's)


def record_format(cfg: RunConfig | None) -> tuple[str, dict[str, str]]:
    """The record format and column mapping the run's task reads its data with."""
    if cfg is None:
        return "auto", {}
    if cfg.task.record_format == "classification":
        columns = {"text": cfg.data.text_field, "label": cfg.data.label_field}
        if cfg.data.text_pair_field:
            columns["text_pair"] = cfg.data.text_pair_field
        return "classification", columns
    return cfg.data.format, dict(cfg.data.columns)


def build_checks(
    held: list[Item] | None,
    eval_path: Path | None,
    cfg: RunConfig | None,
    tokenizer: Any,
    options: CheckOptions,
) -> list[Check]:
    checks: list[Check] = [
        StructureCheck(),
        LabelCheck(held),
        DuplicateCheck(options.near_threshold, options.shingle_chars),
    ]
    if held is not None and eval_path is not None:
        checks.append(
            LeakageCheck(held, eval_path, options.near_threshold, options.shingle_chars, options.ngram)
        )
    if options.fast:
        return checks
    checks += [PiiCheck(), BiasSignalCheck()]
    if options.languages:
        checks.append(LanguageCheck(options.language))
    if tokenizer is not None and cfg is not None:
        checks.append(TokenCheck(cfg, tokenizer))
    return checks


def run_checks(
    train_path: Path,
    eval_path: Path | None,
    cfg: RunConfig | None,
    tokenizer: Any,
    options: CheckOptions,
    on_bytes: Callable[[int], None] | None = None,
) -> Report:
    fmt, columns = record_format(cfg)
    held = load_items(eval_path, fmt, columns) if eval_path is not None else None
    checks = build_checks(held, eval_path, cfg, tokenizer, options)
    report = Report(records=0)
    for item in iter_items(train_path, fmt, columns, on_bytes):
        report.records += 1
        for check in checks:
            check.add(item)
    for check in checks:
        check.finish(report)
    report.sections.setdefault("leakage", [])
    if options.fast or tokenizer is None or cfg is None:
        report.sections.setdefault("too_long", None)
    return report
