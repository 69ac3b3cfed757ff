"""Atomic, durable file writes, for everything tunesmith writes (run folders, checkpoints, exports, data
fixes): a reader never sees half a file, a crash leaves the old file or folder in place, appended lines are
synced. The lowest layer: it imports nothing of tunesmith, so every package may use it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_open(path: Path, binary: bool = False) -> Iterator[Any]:
    """A text (or BINARY) handle on a temporary file in the same folder, renamed onto PATH when the block
    ends cleanly: readers never see half a file, and a failure leaves the old file (or none) in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """As atomic_write_text, for bytes (an upload)."""
    with atomic_open(path, binary=True) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_open(path) as handle:
        handle.write(text)


def read_jsonl_records(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of an append-only JSONL file; a line cut by a kill or a full disk (never valid
    JSON) is left out, not fatal."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def finite_json(data: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers, and readers must be able to parse it."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite_json(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite_json(v) for v in data]
    return data


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(finite_json(data), indent=2, default=str, allow_nan=False) + "\n")


def append_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Append JSON lines, flushed and synced: a crash or Ctrl-C never loses what was written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        handle.flush()
        os.fsync(handle.fileno())


def replace_folder(tmp: Path, final: Path) -> None:
    """Move a fully written folder into place, replacing an older one of ours."""
    if final.exists():
        old = final.with_name(f".old-{final.name}")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


def restore_replaced(final: Path) -> str | None:
    """Undo what a kill inside `replace_folder` left: a `.old-NAME` whose replacement never arrived is
    put back (a newer NAME wins, and the old one goes); a note saying what was done, else None."""
    old = final.with_name(f".old-{final.name}")
    if not old.is_dir():
        return None
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        return None
    old.rename(final)
    return f"restored {final.name}/ (its replacement was never completed)"
