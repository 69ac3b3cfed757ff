"""Optional experiment trackers through their own libraries, wired by accelerate's tracker integration
(`Accelerator(log_with=...)`): TensorBoard, MLflow and Weights & Biases. Everything is also in
metrics.jsonl and the run registry; trackers are for people who already live in one of these tools.
W&B runs offline unless WANDB_MODE says otherwise (no network is assumed), and MLflow writes under the
output root unless MLFLOW_TRACKING_URI says otherwise (see `prepare_trackers`)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunesmith.engine.callbacks import Event, LoopState
from tunesmith.errors import UserError

PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def check_trackers(names: Sequence[str]) -> None:
    """Before anything loads: every chosen tracker's library is installed."""
    for name in names:
        if importlib.util.find_spec(PACKAGES[name]) is None:
            raise UserError(
                f"output.trackers: {name} needs the {PACKAGES[name]} package; install it with "
                f"pip install 'tunesmith[{name}]' (or remove {name} from output.trackers)"
            )


def prepare_trackers(names: Sequence[str], run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per-run tracker settings (no process-wide environment is changed): W&B offline in the run folder,
    MLflow in `mlflow.db` under the output root (its recommended local backend; the file store is in
    maintenance mode), each unless the user's environment chooses otherwise. Returns accelerate's
    `init_kwargs`."""
    init_kwargs: dict[str, dict[str, Any]] = {}
    if "wandb" in names:
        init_kwargs["wandb"] = {"mode": os.environ.get("WANDB_MODE", "offline"), "dir": str(run_dir)}
    if "mlflow" in names and "MLFLOW_TRACKING_URI" not in os.environ:
        import mlflow

        mlflow.set_tracking_uri(f"sqlite:///{(run_dir.parent / 'mlflow.db').resolve()}")
    return init_kwargs


def flat_config(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config → {"train.lr": 0.0002, ...} with scalar values (what trackers' hparams accept)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_config(value, f"{name}."))
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[name] = "none" if value is None else value
        else:
            flat[name] = str(value)
    return flat


class TrackerLog:
    """Callback: every numeric value of a step or evaluation record goes to the trackers."""

    def __init__(self, accelerator: Any, every: int = 1) -> None:
        self.accelerator = accelerator
        self.every = every  # train.log_every_steps: step records every N steps (evaluations always)

    def __call__(self, event: Event, state: LoopState, record: dict[str, Any]) -> None:
        if event not in (Event.STEP_END, Event.EVALUATE):
            return
        if event is Event.STEP_END and state.step % self.every and state.step != state.total_steps:
            return
        values = {
            k: v
            for k, v in record.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        if event is Event.EVALUATE:
            values = {f"eval/{k}" if not k.startswith("eval") else k: v for k, v in values.items()}
        self.accelerator.log(values, step=state.step)
