"""`--fix OUT`: a cleaned copy (JSONL) and a log of every record removed and why. Unreadable records,
later copies of exact duplicates and all but the first of each near-duplicate group are removed;
mojibake is repaired (`ftfy`) and personal data masked with typed placeholders. The input is never
touched, and the output is written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.data.quality.items import iter_items
from tunesmith.data.quality.pii import mask
from tunesmith.data.quality.report import Report
from tunesmith.errors import UserError
from tunesmith.files import atomic_open


def clean_value(value: Any) -> Any:
    import ftfy

    if isinstance(value, str):
        return mask(ftfy.fix_text(value))
    if isinstance(value, list):
        return [clean_value(v) for v in value]
    if isinstance(value, dict):
        return {k: clean_value(v) for k, v in value.items()}
    return value


def write_fixed(
    source: Path, report: Report, out: Path, format_name: str = "auto", columns: dict[str, str] | None = None
) -> tuple[int, int]:
    """(records kept, records removed); the removal log is OUT with suffix .removed.jsonl. The source is
    read a second time, streamed, so the fix costs no more memory than the check."""
    log_path = out.with_suffix(".removed.jsonl")
    for written in (out, log_path):
        if written.resolve() == source.resolve():
            raise UserError(f"--fix {out}: {written} would be the input file; the checker never modifies its input")
    reasons: dict[int, str] = {}
    for group in report.sections.get("exact_duplicates", []):
        for index in group[1:]:
            reasons.setdefault(index, f"exact duplicate of record {group[0]}")
    for group in report.sections.get("near_duplicates", []):
        for index in group[1:]:
            reasons.setdefault(index, f"near duplicate of record {group[0]}")
    kept = removed = 0
    with atomic_open(out) as cleaned, atomic_open(log_path) as log:
        for item in iter_items(source, format_name, columns):
            reason = f"unreadable: {item.problem}" if item.problem is not None or item.row is None else None
            reason = reason or reasons.get(item.index)
            if reason is None:
                cleaned.write(json.dumps(clean_value(item.row), ensure_ascii=False) + "\n")
                kept += 1
            else:
                log.write(json.dumps({"record": item.index, "where": item.where, "reason": reason}) + "\n")
                removed += 1
    return kept, removed
