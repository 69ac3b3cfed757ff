"""Trained results read back from run folders, several of them on one base model.

`TunedModels({"fraud": "runs/fraud", "tone": "runs/tone"})` loads the base once and each run's
trained part on top; `use(name)` switches between them in place (`use(None)` is the base), so
comparing adapters never reloads the base. Readers only read: nothing here touches training.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.config import RunConfig, load_config
from tunesmith.errors import UserError
from tunesmith.methods import METHODS, Method
from tunesmith.models.load import ModelSource, load_tokenizer, resolve_model
from tunesmith.runs.folder import RunFolder
from tunesmith.tasks import TASKS


@dataclass
class ReaderTrust:
    """What reading someone's run folder may do. A run folder is data: by default loading it never imports
    a module it names (reward functions) and never runs code shipped with its model; the command line
    turns either on (`tunesmith --allow-imports ...`, `tunesmith --trust-remote-code ...`)."""

    allow_imports: bool = False
    trust_remote_code: bool = False
    allow_pickle_weights: bool = False


TRUST = ReaderTrust()


@dataclass(frozen=True)
class RunModel:
    """What a finished run folder says about its model."""

    path: Path
    config: RunConfig
    final: Path
    labels: list[str]  # classification: class names in id order; else empty

    @property
    def method(self) -> Method:
        return METHODS.get(self.config.method.name)


def read_run(run_dir: str | Path) -> RunModel:
    path = Path(run_dir)
    if not (path / "config.yaml").is_file():
        raise UserError(f"{path} is not a run folder (no config.yaml)")
    if not (path / "final").is_dir():
        raise UserError(f"{path} has no final/ model yet; the run did not finish")
    labels_file = RunFolder(path).labels
    labels = json.loads(labels_file.read_text()) if labels_file.is_file() else []
    return RunModel(path, untrusted_config(path / "config.yaml"), path / "final", labels)


def untrusted_config(path: Path) -> RunConfig:
    """A run's config.yaml, read as data (see ReaderTrust): remote code refused unless trusted, reward
    functions dropped unless imports are allowed (readers that need them say so)."""
    import yaml

    raw = yaml.safe_load(path.read_text()) or {}
    model = raw.get("model") if isinstance(raw, dict) else None
    if isinstance(model, dict) and model.get("allow_pickle_weights") and not TRUST.allow_pickle_weights:
        raise UserError(
            f"{path}: the run's config sets model.allow_pickle_weights (pickle files can run code when loaded); "
            "pass tunesmith --allow-pickle-weights if you trust its weights"
        )
    if isinstance(model, dict) and model.get("trust_remote_code") and not TRUST.trust_remote_code:
        raise UserError(
            f"{path}: the run's model needs model.trust_remote_code (code shipped with the model would run); "
            "pass tunesmith --trust-remote-code if you trust it"
        )
    task = raw.get("task") if isinstance(raw, dict) else None
    if isinstance(task, dict) and task.get("reward_functions") and not TRUST.allow_imports:
        # validation needs a reward source; a placeholder that is never imported keeps the config valid
        task["reward_functions"] = [{"function": f"{BLOCKED}:{BLOCKED}"}]
    return load_config(raw, base_dir=path.resolve().parent)


BLOCKED = "blocked_by_tunesmith"  # a reward function not imported (tunesmith --allow-imports lifts it)


def load_base(run: RunModel) -> tuple[ModelSource, Any, Any]:
    """(source, the task's base model in full precision, tokenizer saved with the run)."""
    from transformers import AutoTokenizer

    source = resolve_model(run.config.model)
    saved = (run.final / "tokenizer_config.json").is_file()
    tokenizer = (
        AutoTokenizer.from_pretrained(run.final) if saved else load_tokenizer(source, run.config.model)
    )
    model = TASKS.get(run.config.task.name).load_model(source, run.config, run.labels, tokenizer)
    return source, model, tokenizer


class TunedModels:
    """Several runs' results on one shared base model, switched by name."""

    def __init__(self, runs: Mapping[str, str | Path]) -> None:
        if not runs:
            raise UserError("give at least one run folder")
        self.runs = {name: read_run(path) for name, path in runs.items()}
        first = next(iter(self.runs.values()))
        for name, run in self.runs.items():
            if run.config.model.path != first.config.model.path:
                raise UserError(
                    f"run {name} ({run.path}) was trained on {run.config.model.path}, "
                    f"not {first.config.model.path}: one base model per set"
                )
            if run.config.method.name != first.config.method.name:
                raise UserError(
                    f"run {name} uses method {run.config.method.name}, not {first.config.method.name}: "
                    "one method per set"
                )
        self.method = first.method
        _, model, self.tokenizer = load_base(first)
        for name, run in self.runs.items():
            model = self.method.load_trained(model, run.final, name)
        self.model = model
        self.active: str | None = None
        self.use(next(iter(self.runs)))

    @property
    def names(self) -> list[str]:
        return list(self.runs)

    def use(self, name: str | None) -> Any:
        """Make `name` the active result (None: the base model); returns the model."""
        if name is not None and name not in self.runs:
            raise UserError(f"no run named {name!r} in this set; loaded: {', '.join(self.runs)}")
        self.method.activate(self.model, name)
        self.active = name
        return self.model
