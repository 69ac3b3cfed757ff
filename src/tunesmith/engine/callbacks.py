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


class Callback(Protocol):
    def __call__(self, event: Event, state: LoopState, record: dict[str, Any]) -> None: ...
