"""Read rows from JSONL, JSON, CSV, Parquet or a folder of .txt files, each with its location.

Every row comes with a location string (``file:line`` or ``file row N``) so that any later error can
point at the exact place in the user's file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunesmith.errors import UserError

Row = dict[str, Any]
SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt")


def read_rows(path: str | Path) -> list[tuple[str, Row]]:
    """All rows of one source as (location, row) pairs; a bad file is one clear UserError."""
    rows = list(stream_rows(path))
    if not rows:
        raise UserError(f"{path}: the dataset is empty (no records)")
    return rows


def stream_rows(path: str | Path) -> Iterator[tuple[str, Row]]:
    """Rows one at a time (JSONL, CSV, Parquet in record batches, .txt files); a JSON document is one
    value and is read whole."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"data file {path} does not exist")
    if path.is_dir():
        yield from _read_text_folder(path)
        return
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise UserError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(SUFFIXES)}")
    yield from reader(path)


def _read_jsonl(path: Path) -> Iterator[tuple[str, Row]]:
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(
                    f"{path}:{lineno}: malformed JSON line ({exc.msg} at column {exc.colno})"
                ) from None
            yield f"{path}:{lineno}", _as_object(row, f"{path}:{lineno}")


def _read_json(path: Path) -> Iterator[tuple[str, Row]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    if isinstance(data, dict):
        # {"data": [...]} or {"train": [...]}: take the single list inside
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise UserError(f"{path}: expected a list of records (or an object holding one list)")
        data = lists[0]
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a list of records, got {type(data).__name__}")
    for index, row in enumerate(data):
        where = f"{path} record {index}"
        yield where, _as_object(row, where)


def _read_csv(path: Path) -> Iterator[tuple[str, Row]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield f"{path}:{reader.line_num}", {k: v for k, v in row.items() if k is not None}


def _read_parquet(path: Path) -> Iterator[tuple[str, Row]]:
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=4096)  # streamed: a batch in memory at a time
        index = 0
        for batch in batches:
            for row in batch.to_pylist():
                yield f"{path} row {index}", row
                index += 1
    except UserError:
        raise
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise UserError(f"{path}: not a readable Parquet file ({exc})") from None


def _read_text_file(path: Path) -> Iterator[tuple[str, Row]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.strip():
        yield str(path), {"text": text}


def _read_text_folder(path: Path) -> Iterator[tuple[str, Row]]:
    for file in sorted(path.rglob("*.txt")):
        yield from _read_text_file(file)


def _as_object(row: Any, where: str) -> Row:
    if not isinstance(row, dict):
        raise UserError(f"{where}: a record must be a JSON object, got {type(row).__name__}")
    return row


_READERS = {
    ".jsonl": _read_jsonl,
    ".json": _read_json,
    ".csv": _read_csv,
    ".parquet": _read_parquet,
    ".txt": _read_text_file,
}
