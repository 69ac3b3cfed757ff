"""Data files → items: each row with its location, the text of every field, and the canonical record
(or why it could not be made). Reading is tolerant: a malformed line becomes a finding, not a stop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.data.formats import FORMATS, detect_format
from tunesmith.data.readers import read_rows
from tunesmith.errors import UserError


@dataclass
class Item:
    index: int  # record number in the file, from 0
    where: str  # file:line
    row: dict[str, Any] | None  # None when the line did not parse
    texts: dict[str, str] = field(default_factory=dict)  # field path → text (messages[1].content, ...)
    record: Any = None  # the canonical record, when the row converts
    problem: str | None = None  # why the row or record could not be read

    def joined(self) -> str:
        return "\n".join(self.texts.values())


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside a row, with its path (`messages[2].content`)."""
    if isinstance(value, str):
        yield prefix, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key not in ("role", "from"):
                yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from flatten(inner, f"{prefix}[{i}]")


def iter_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """(where, row, problem): JSONL streamed line by line; other formats through the normal readers."""
    if not path.is_file():
        raise UserError(f"data file {path} does not exist")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty (0 bytes)")
    with path.open("rb") as probe:
        if b"\0" in probe.read(4096):
            raise UserError(f"{path}: looks like a binary file, not text data")
    if path.suffix != ".jsonl":
        for where, row in read_rows(path):
            yield where, row, None
        return
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield f"{path}:{number}", None, f"malformed JSON ({exc.msg})"
                continue
            if not isinstance(row, dict):
                yield f"{path}:{number}", None, "the line is not a JSON object"
                continue
            yield f"{path}:{number}", row, None


def load_items(path: Path, format_name: str = "auto", columns: dict[str, str] | None = None) -> list[Item]:
    columns = columns or {}
    items: list[Item] = []
    fmt = None if format_name == "auto" else FORMATS.get(format_name)
    for index, (where, row, problem) in enumerate(iter_rows(path)):
        item = Item(index, where, row, problem=problem)
        if row is not None:
            item.texts = dict(flatten(row))
            try:
                if fmt is None:
                    fmt = detect_format(row, where, columns)
                item.record = fmt.to_record(row, where, columns)
            except UserError as exc:
                item.problem = exc.message.split(": ", 1)[-1]
        items.append(item)
    if not items:
        raise UserError(f"{path}: no records")
    return items
