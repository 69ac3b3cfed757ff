"""Events the loop emits and the Callback protocol; metric logging is a callback like any other."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol


class Event(enum.Enum):
    STEP_END = "step_end"
    EVALUATE = "evaluate"
    CHECKPOINT = "checkpoint"
    TRAIN_END = "train_end"


@dataclass
class LoopState:
    step: int  # optimizer steps done
    total_steps: int
    real_tokens: int = 0  # non-padding tokens trained on so far
    padded_tokens: int = 0  # tokens including padding
    train_seconds: float = 0.0  # time spent in optimizer steps (evaluation excluded)
    last_loss: float | None = None
    last_eval_loss: float | None = None
    stop_reason: str | None = None  # set by a callback (early stopping) to end training after this step


class EarlyStopping:
    """Stops when the eval loss has not improved by more than `min_delta` for `patience` evaluations,
    and remembers the best step; `on_best` is called at every new best (to keep its weights)."""

    def __init__(self, patience: int, min_delta: float, on_best: Any) -> None:
        self.patience, self.min_delta, self.on_best = patience, min_delta, on_best
        self.best_loss: float | None = None
        self.best_step: int | None = None
        self.bad_evals = 0

    def __call__(self, event: Event, state: LoopState, record: dict[str, Any]) -> None:
        if event is not Event.EVALUATE or record.get("eval_loss") is None:
            return
        loss = float(record["eval_loss"])
        if self.best_loss is None or loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_step, self.bad_evals = loss, state.step, 0
            self.on_best(state.step)
            return
        self.bad_evals += 1
        if self.bad_evals >= self.patience and state.step < state.total_steps:
            state.stop_reason = (
                f"eval_loss did not improve by more than {self.min_delta} for {self.patience} evaluations "
                f"(best {self.best_loss:.4f} at step {self.best_step})"
            )


class Callback(Protocol):
    def __call__(self, event: Event, state: LoopState, record: dict[str, Any]) -> None: ...
