"""Run folder layout (its writes go through tunesmith.files, atomic).

runs/<name>/
  config.yaml        resolved config
  metrics.jsonl      one JSON object per line (train steps and evaluations)
  train.log          what the console showed
  checkpoints/step-N/ resumable training state
  final/             the adapter or the model, with tokenizer
  summary.json       the run's headline numbers
  predictions_before.jsonl / predictions_after.jsonl
                     generation and classification tasks: every eval input, its reference, the model's
                     output (and whether it was scored right) before and after training
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tunesmith.errors import UserError
from tunesmith.files import atomic_write_text, finite_json, read_jsonl_records

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

    def predictions(self, when: str) -> Path:
        """predictions_before.jsonl / predictions_after.jsonl"""
        return self.path / f"predictions_{when}.jsonl"

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
        return read_jsonl_records(self.metrics)

    def truncate_metrics(self, last_step: int) -> None:
        """On resume, drop lines logged after the checkpoint we restart from."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= last_step]
        atomic_write_text(self.metrics, "".join(json.dumps(r) + "\n" for r in kept))

    def log_line(self, text: str) -> None:
        with self.log.open("a", encoding="utf-8") as handle:
            handle.write(text.rstrip() + "\n")
