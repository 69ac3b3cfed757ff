"""The run's watchers as one unit: early stopping (keeping the best step's trainable weights) and the
overfitting watch, with the state they carry through a checkpoint for `--resume`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tunesmith.engine.callbacks import EarlyStopping, LoopState, OverfittingWatch
from tunesmith.engine.sharding import load_trainable, trainable_state
from tunesmith.sections import EarlyStoppingConfig


class Watchers:
    def __init__(
        self, model: nn.Module, stopping: EarlyStoppingConfig | None, overfit_patience: int, say: Any
    ) -> None:
        self.model, self.stopping = model, stopping
        self.best_weights: dict[str, torch.Tensor] = {}
        # without eval.early_stopping the tracker only records the best step (patience never runs out)
        self.early_stopping = EarlyStopping(
            stopping.patience if stopping else 10**9, stopping.min_delta if stopping else 0.0, self.keep_best
        )
        self.overfitting = OverfittingWatch(overfit_patience, say)

    def keep_best(self, step: int) -> None:
        if self.stopping is not None:  # the best step's trainable weights, to become final/
            self.best_weights = {n: t.clone() for n, t in trainable_state(self.model).items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "early_stopping": self.early_stopping.state_dict(),
            "overfitting": self.overfitting.state_dict(),
        }

    def load_state_dict(self, saved: dict[str, Any], best_weights: dict[str, torch.Tensor]) -> None:
        self.early_stopping.load_state_dict(saved.get("early_stopping", {}))
        self.overfitting.load_state_dict(saved.get("overfitting", {}))
        self.best_weights = dict(best_weights)

    def restore_best(self, step: int) -> bool:
        """Copy the best step's weights back when training went past it; True when it did."""
        if not self.best_weights or self.early_stopping.best_step == step:
            return False
        load_trainable(self.model, self.best_weights)
        return True

    def summary(self, state: LoopState) -> dict[str, Any]:
        return {
            "best_step": self.early_stopping.best_step,
            "best_eval_loss": self.early_stopping.best_loss,
            "stopped_early": state.stop_reason is not None,
            "stop_reason": state.stop_reason or f"reached {state.total_steps} steps",
            "overfitting": self.overfitting.summary(),
        }
