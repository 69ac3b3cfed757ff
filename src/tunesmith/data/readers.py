"""Read rows from JSONL, JSON, CSV, Parquet or a folder of .txt files, each with its location.

Every row comes with a location string (``file:line`` or ``file row N``) so that any later error can
point at the exact place in the user's file. Files are untrusted: a UTF-8 byte-order mark and CRLF line
ends (what Excel, Notepad and PowerShell write) are accepted; invalid UTF-8, a binary file, a line over
`MAX_LINE_BYTES`, a document read whole over `MAX_WHOLE_BYTES`, JSON nested too deeply or a CSV field
over the limit is one UserError naming the file and line, with memory bounded by those limits.
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
MAX_LINE_BYTES = 16 * 2**20  # one JSONL record / CSV field
MAX_WHOLE_BYTES = 512 * 2**20  # a .json or .txt file, which is read whole
BOM = b"\xef\xbb\xbf"


def check_not_binary(path: Path) -> None:
    """Parquet must start with its magic; every other format is text (no NUL bytes up front)."""
    with path.open("rb") as probe:
        head = probe.read(4096)
    if path.suffix.lower() == ".parquet":
        if not head.startswith(b"PAR1"):
            raise UserError(f"{path}: not a Parquet file (it does not start with PAR1)")
    elif b"\0" in head:
        raise UserError(f"{path}: looks like a binary file, not text data")


def decode_utf8(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{where}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); save the file as UTF-8"
        ) from None


def parse_json(text: str, where: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: malformed JSON line ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise UserError(f"{where}: JSON nested too deeply to be a record") from None
    reject_lone_surrogates(text, value, where)
    return value


def reject_lone_surrogates(text: str, value: Any, where: str) -> None:
    """json.loads accepts a lone \\ud800-\\udfff escape, which no encoder can write back: refuse it here."""
    if "\\ud" not in text.lower():  # the cheap test first: only an escape can make one
        return
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{where}: a \\ud800-\\udfff escape that is half a character (not valid Unicode text)") from None


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
    try:
        check_not_binary(path)
        yield from reader(path)
    except OSError as exc:  # unreadable: permissions, a directory where a file was expected, I/O errors
        raise UserError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a text file, BOM and line ends stripped, each line bounded in size."""
    with path.open("rb") as handle:
        lineno = 0
        while True:
            raw = handle.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) > MAX_LINE_BYTES:
                raise UserError(f"{path}:{lineno}: line longer than {MAX_LINE_BYTES // 2**20} MiB; split the record")
            if lineno == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            yield lineno, decode_utf8(raw, f"{path}:{lineno}").rstrip("\r\n")


def _read_jsonl(path: Path) -> Iterator[tuple[str, Row]]:
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        yield where, _as_object(parse_json(line, where), where)


def _read_whole(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_WHOLE_BYTES:
        raise UserError(
            f"{path}: {size / 2**20:.0f} MiB is too large to read whole (limit {MAX_WHOLE_BYTES // 2**20} MiB); "
            "use JSONL, which is read line by line"
        )
    raw = path.read_bytes()
    raw = raw[len(BOM) :] if raw.startswith(BOM) else raw
    return decode_utf8(raw, str(path)).replace("\r\n", "\n")


def _read_json(path: Path) -> Iterator[tuple[str, Row]]:
    text = _read_whole(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    except RecursionError:
        raise UserError(f"{path}: JSON nested too deeply to be a list of records") from None
    reject_lone_surrogates(text, data, str(path))
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
    csv.field_size_limit(MAX_LINE_BYTES)
    with path.open(encoding="utf-8-sig", newline="") as handle:  # utf-8-sig: a BOM is not a column name
        reader = csv.DictReader(handle)
        try:
            for row in reader:
                yield f"{path}:{reader.line_num}", {k: v for k, v in row.items() if k is not None}
        except csv.Error as exc:
            raise UserError(f"{path}:{reader.line_num + 1}: unreadable CSV ({exc})") from None
        except UnicodeDecodeError as exc:
            raise UserError(
                f"{path}:{reader.line_num + 1}: not valid UTF-8 (byte 0x{exc.object[exc.start]:02x}); save the file as UTF-8"
            ) from None


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
    check_not_binary(path)
    text = _read_whole(path)
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
