"""Data files → items, streamed one at a time: each row with its location, the text of every field, and
the canonical record (or why it could not be made). Reading is tolerant: a malformed line becomes a
finding, not a stop. Checks keep only what they need of an item (a fingerprint, a signature, a hit), so
memory grows with those, not with the file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.data.formats import FORMATS, detect_format
from tunesmith.data.quality.minhash import signature
from tunesmith.data.quality.text import char_shingles, fingerprint
from tunesmith.data.readers import BOM, check_not_binary, stream_rows
from tunesmith.errors import UserError


@dataclass
class Item:
    index: int  # record number in the file, from 0
    where: str  # file:line
    row: dict[str, Any] | None  # None when the line did not parse
    texts: dict[str, str] = field(default_factory=dict)  # field path → text (messages[1].content, ...)
    record: Any = None  # the canonical record, when the row converts
    problem: str | None = None  # why the row or record could not be read
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)  # per-item values several checks use

    def joined(self) -> str:
        if "joined" not in self._memo:
            self._memo["joined"] = "\n".join(self.texts.values())
        return self._memo["joined"]  # type: ignore[no-any-return]

    def fingerprint(self) -> int:
        if "fingerprint" not in self._memo:
            self._memo["fingerprint"] = fingerprint(self.joined())
        return self._memo["fingerprint"]  # type: ignore[no-any-return]

    def signature(self, shingle_chars: int) -> Any:
        """MinHash hash values (uint32, NUM_PERM) of the character shingles; shared by duplicates and leakage."""
        key = ("signature", shingle_chars)
        if key not in self._memo:
            self._memo[key] = signature(char_shingles(self.joined(), shingle_chars))
        return self._memo[key]


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


def iter_rows(
    path: Path, on_bytes: Callable[[int], None] | None = None
) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """(where, row, problem): JSONL streamed line by line (ON_BYTES hears how far the reading got);
    other formats through the normal readers."""
    if not path.is_file():
        raise UserError(f"data file {path} does not exist")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty (0 bytes)")
    check_not_binary(path)
    if path.suffix != ".jsonl":  # CSV and Parquet stream too; a JSON document is read whole
        for where, row in stream_rows(path):
            yield where, row, None
        return
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if on_bytes is not None:
                on_bytes(len(raw))
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            line = raw.decode("utf-8", errors="replace")
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield f"{path}:{number}", None, f"malformed JSON ({exc.msg})"
                continue
            except RecursionError:
                yield f"{path}:{number}", None, "JSON nested too deeply"
                continue
            if not isinstance(row, dict):
                yield f"{path}:{number}", None, "the line is not a JSON object"
                continue
            yield f"{path}:{number}", row, None


def iter_items(
    path: Path,
    format_name: str = "auto",
    columns: dict[str, str] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[Item]:
    columns = columns or {}
    fmt = None if format_name == "auto" else FORMATS.get(format_name)
    index = -1
    for index, (where, row, problem) in enumerate(iter_rows(path, on_bytes)):
        item = Item(index, where, row, problem=problem)
        if row is not None:
            item.texts = dict(flatten(row))
            try:
                if fmt is None:
                    fmt = detect_format(row, where, columns)
                item.record = fmt.to_record(row, where, columns)
            except UserError as exc:
                item.problem = exc.message.split(": ", 1)[-1]
        yield item
    if index < 0:
        raise UserError(f"{path}: no records")


def load_items(path: Path, format_name: str = "auto", columns: dict[str, str] | None = None) -> list[Item]:
    """All items in memory: for the eval side, which checks index (it is the small one)."""
    return list(iter_items(path, format_name, columns))
