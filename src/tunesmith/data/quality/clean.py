"""The data check's duplicate and leakage findings applied to rows in memory: for scripts that build a data
set (the examples' make_data.py) and want it to pass `tunesmith data check` by construction, without
writing the files first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.data.quality.duplicates import DuplicateCheck
from tunesmith.data.quality.items import Item, flatten
from tunesmith.data.quality.leakage import LeakageCheck
from tunesmith.data.quality.report import Report


def _items(rows: list[dict[str, Any]]) -> list[Item]:
    return [Item(i, f"row {i}", row, dict(flatten(row))) for i, row in enumerate(rows)]


def deduplicate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows without the later members of every exact or near-duplicate group the data check finds."""
    check = DuplicateCheck()
    for item in _items(rows):
        check.add(item)
    report = Report(len(rows))
    check.finish(report)
    groups = report.sections["exact_duplicates"] + report.sections["near_duplicates"]
    repeats = {i for group in groups for i in group[1:]}
    return [row for i, row in enumerate(rows) if i not in repeats]


def decontaminate(train: list[dict[str, Any]], held: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The held-out rows the leakage check does not find overlapping training rows (exact, near, 13-gram)."""
    check = LeakageCheck(_items(held), Path("eval"))
    for item in _items(train):
        check.add(item)
    report = Report(len(held))
    check.finish(report)
    leaked = {leak["eval_record"] for leak in report.sections["leakage"]}
    return [row for i, row in enumerate(held) if i not in leaked]
