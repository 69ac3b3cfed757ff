"""Run folder layout and atomic writes.

runs/<name>/
  config.yaml        resolved config
  metrics.jsonl      one JSON object per line (train steps and evaluations)
  train.log          what the console showed
  checkpoints/step-N/ resumable training state
  final/             the adapter or the model, with tokenizer
  summary.json       the run's headline numbers
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
from typing import Any, TextIO

from tunesmith.errors import UserError


@contextmanager
def atomic_open(path: Path) -> Iterator[TextIO]:
    """A text handle on a temporary file in the same folder, renamed onto PATH when the block ends
    cleanly: readers never see half a file, and a failure leaves the old file (or none) in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_open(path) as handle:
        handle.write(text)


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


LABELS_FILE = "labels.json"
EARLY_RUN_FILES = {"train.log"}  # what a run may write before its config.yaml


class RunFolder:
    def __init__(self, path: Path) -> None:
        self.path = path

    config = property(lambda self: self.path / "config.yaml")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    log = property(lambda self: self.path / "train.log")
    checkpoints = property(lambda self: self.path / "checkpoints")
    final = property(lambda self: self.path / "final")
    summary = property(lambda self: self.path / "summary.json")
    state = property(lambda self: self.path / "state.json")
    labels = property(lambda self: self.path / LABELS_FILE)  # classification: class names in id order

    def check_available(self, resume: bool, overwrite: bool) -> None:
        """Refuse to touch an existing run unless told how; called before anything is written."""
        exists = self.path.exists() and any(self.path.iterdir())
        if resume:
            if not self.config.is_file():
                raise UserError(f"--resume: {self.path} holds no run to resume")
            return
        if exists and not overwrite:
            raise UserError(
                f"run folder {self.path} already exists; pass --resume to continue it, --overwrite to replace it, "
                "or choose another output.name"
            )
        if exists:
            self.check_replaceable()

    def check_replaceable(self) -> None:
        """--overwrite removes only a tunesmith run (it has its config.yaml) or an empty folder."""
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_dir()):
            raise UserError(f"--overwrite: {self.path} is not a run folder; it is left alone")
        if self.path.is_dir() and not self._is_run() and not self._only_run_files():
            raise UserError(
                f"--overwrite: {self.path} is not a tunesmith run (no run config.yaml); it is left alone, choose "
                "another output.name"
            )

    def _is_run(self) -> bool:
        """A config.yaml that reads as a tunesmith run config (not just any file of that name)."""
        import yaml

        try:
            raw = yaml.safe_load(self.config.read_text())
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            return False
        return isinstance(raw, dict) and isinstance(raw.get("data"), dict) and isinstance(raw.get("model"), dict)

    def _only_run_files(self) -> bool:
        """Empty, or holding only what a run writes before its config.yaml (it was killed that early)."""
        return all(p.name in EARLY_RUN_FILES or p.name.startswith(".tmp-") for p in self.path.iterdir())

    def create(self, overwrite: bool) -> str | None:
        """Make the folder; with overwrite, first remove the earlier run there. Returns what was removed."""
        removed = None
        if overwrite and self.path.exists():
            self.check_replaceable()
            shutil.rmtree(self.path)
            removed = f"removed the earlier run folder {self.path}"
        self.path.mkdir(parents=True, exist_ok=True)
        return removed

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(finite_json(record)) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """The logged lines; a line cut by a kill or a full disk (never valid JSON) is left out."""
        if not self.metrics.is_file():
            return []
        records = []
        for line in self.metrics.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def truncate_metrics(self, last_step: int) -> None:
        """On resume, drop lines logged after the checkpoint we restart from."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= last_step]
        atomic_write_text(self.metrics, "".join(json.dumps(r) + "\n" for r in kept))

    def log_line(self, text: str) -> None:
        with self.log.open("a", encoding="utf-8") as handle:
            handle.write(text.rstrip() + "\n")


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
