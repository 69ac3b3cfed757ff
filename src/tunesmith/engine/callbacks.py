"""Events the loop emits and the Callback protocol; metric logging is a callback like any other."""

from __future__ import annotations

import enum
import math
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
    skipped_steps: int = 0  # updates skipped for a non-finite loss / gradient (train.nan_policy: skip_step)
    consecutive_skips: int = 0
    last_saved_step: int | None = None
    micro_batch: int | None = None  # set when train.auto_micro_batch halved the micro-batch

    def counters(self) -> dict[str, Any]:
        """What a checkpoint keeps so that a resumed run counts on exactly as the uninterrupted one."""
        return {"real_tokens": self.real_tokens, "padded_tokens": self.padded_tokens,
                "train_seconds": self.train_seconds, "skipped_steps": self.skipped_steps,
                "consecutive_skips": self.consecutive_skips, "micro_batch": self.micro_batch}

    def load_counters(self, saved: dict[str, Any]) -> None:
        for key, value in saved.items():
            current = getattr(self, key)
            setattr(self, key, value if current is None or value is None else type(current)(value))


class EarlyStopping:
    """Stops when the eval loss has not improved by more than `min_delta` for `patience` evaluations,
    and remembers the best step; `on_best` is called at every new best (to keep its weights)."""

    def __init__(self, patience: int, min_delta: float, on_best: Any) -> None:
        self.patience, self.min_delta, self.on_best = patience, min_delta, on_best
        self.best_loss: float | None = None
        self.best_step: int | None = None
        self.bad_evals = 0

    def state_dict(self) -> dict[str, Any]:
        return {"best_loss": self.best_loss, "best_step": self.best_step, "bad_evals": self.bad_evals}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.best_loss = saved.get("best_loss", self.best_loss)
        self.best_step = saved.get("best_step", self.best_step)
        self.bad_evals = saved.get("bad_evals", self.bad_evals)

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


class OverfittingWatch:
    """The generalization gap (eval loss − smoothed train loss) at every evaluation, written into the
    evaluation record (so metrics.jsonl and the report carry it), and one warning when eval loss has
    risen for `patience` evaluations in a row while the smoothed train loss fell: the classic signature
    of a model learning its training records rather than the task."""

    SMOOTHING = 0.3  # EMA weight of the newest train loss: lags ~2 steps, so the gap is not inflated by lag

    def __init__(self, patience: int, warn: Any) -> None:
        self.patience, self.warn = patience, warn
        self.train_loss: float | None = None
        self.history: list[dict[str, float]] = []  # {step, eval_loss, train_loss, gap}
        self.rising = 0
        self.warning: str | None = None

    def __call__(self, event: Event, state: LoopState, record: dict[str, Any]) -> None:
        if event is Event.STEP_END and record.get("loss") is not None and math.isfinite(record["loss"]):
            loss = float(record["loss"])  # a skipped non-finite step must not poison the average
            self.train_loss = (
                loss
                if self.train_loss is None
                else self.train_loss + self.SMOOTHING * (loss - self.train_loss)
            )
            record["train_loss_smoothed"] = self.train_loss
        elif event is Event.EVALUATE and record.get("eval_loss") is not None and self.train_loss is not None:
            point = {
                "step": float(state.step),
                "eval_loss": float(record["eval_loss"]),
                "train_loss": self.train_loss,
                "gap": float(record["eval_loss"]) - self.train_loss,
            }
            record["generalization_gap"] = point["gap"]
            if self.history and self.history[-1]["step"] == point["step"]:
                return  # the same step evaluated again (the final weights): nothing new
            previous = self.history[-1] if self.history else None
            self.history.append(point)
            diverging = (
                previous
                and point["eval_loss"] > previous["eval_loss"]
                and point["train_loss"] < previous["train_loss"]
            )
            self.rising = self.rising + 1 if diverging else 0
            if self.rising >= self.patience and self.warning is None:
                self.warning = (
                    f"overfitting: eval loss rose for {self.rising} evaluations in a row while train loss fell "
                    f"(step {int(point['step'])}: eval {point['eval_loss']:.4f}, train {point['train_loss']:.4f}, "
                    f"gap {point['gap']:.4f}); consider early stopping, more data or fewer steps"
                )
                self.warn("warning: " + self.warning)

    def state_dict(self) -> dict[str, Any]:
        return {
            "train_loss": self.train_loss,
            "history": self.history,
            "rising": self.rising,
            "warning": self.warning,
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        for key, value in saved.items():
            setattr(self, key, value)

    def summary(self) -> dict[str, Any]:
        gaps = [p["gap"] for p in self.history]
        return {
            "warned": self.warning is not None,
            "message": self.warning,
            "evaluations": len(gaps),
            "gap_first": gaps[0] if gaps else None,
            "gap_last": gaps[-1] if gaps else None,
            "gap_trend_per_100_steps": gap_trend(self.history),
            "history": self.history,
        }


def gap_trend(history: list[dict[str, float]]) -> float | None:
    """Least-squares slope of the gap over steps, per 100 steps (> 0: the gap is widening)."""
    if len(history) < 2:
        return None
    steps = [p["step"] for p in history]
    gaps = [p["gap"] for p in history]
    mean_s, mean_g = sum(steps) / len(steps), sum(gaps) / len(gaps)
    spread = sum((s - mean_s) ** 2 for s in steps)
    if spread == 0:
        return None
    return 100 * sum((s - mean_s) * (g - mean_g) for s, g in zip(steps, gaps, strict=True)) / spread


class Callback(Protocol):
    def __call__(self, event: Event, state: LoopState, record: dict[str, Any]) -> None: ...
