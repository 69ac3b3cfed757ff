"""`--fix OUT`: a cleaned copy (JSONL) and a log of every record removed and why. Unreadable records,
later copies of exact duplicates and all but the first of each near-duplicate group are removed;
mojibake is repaired (`ftfy`) and personal data masked with typed placeholders. The input is never
touched, and the output is written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.data.quality.items import Item
from tunesmith.data.quality.pii import mask
from tunesmith.data.quality.report import Report
from tunesmith.errors import UserError
from tunesmith.runs.folder import atomic_write_text


def clean_value(value: Any) -> Any:
    import ftfy

    if isinstance(value, str):
        return mask(ftfy.fix_text(value))
    if isinstance(value, list):
        return [clean_value(v) for v in value]
    if isinstance(value, dict):
        return {k: clean_value(v) for k, v in value.items()}
    return value


def write_fixed(items: list[Item], report: Report, source: Path, out: Path) -> tuple[int, int]:
    """(records kept, records removed); the removal log is OUT with suffix .removed.jsonl."""
    if out.resolve() == source.resolve():
        raise UserError(f"--fix {out} is the input file; the checker never modifies its input")
    reasons: dict[int, str] = {}
    for item in items:
        if item.problem is not None or item.row is None:
            reasons[item.index] = f"unreadable: {item.problem}"
    for group in report.sections.get("exact_duplicates", []):
        for index in group[1:]:
            reasons.setdefault(index, f"exact duplicate of record {group[0]}")
    for group in report.sections.get("near_duplicates", []):
        for index in group[1:]:
            reasons.setdefault(index, f"near duplicate of record {group[0]}")
    kept = [json.dumps(clean_value(i.row), ensure_ascii=False) for i in items if i.index not in reasons]
    removed = [
        json.dumps({"record": i.index, "where": i.where, "reason": reasons[i.index]})
        for i in items
        if i.index in reasons
    ]
    atomic_write_text(out, "".join(line + "\n" for line in kept))
    atomic_write_text(out.with_suffix(".removed.jsonl"), "".join(line + "\n" for line in removed))
    return len(kept), len(removed)
