"""The Task protocol: WHAT the model learns to do — which records it reads, which model head it
trains, which objective turns a batch into a loss, and which metric shows the result.

The training loop is the same for every task; a task only supplies these four pieces.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from torch import nn

from tunesmith.data.packing import Batch, build_rows, collate
from tunesmith.data.prepare import PreparedData
from tunesmith.data.records import TokenizedSample
from tunesmith.data.templates import ChatRenderer
from tunesmith.models.load import ModelSource
from tunesmith.sections import TaskSection

if TYPE_CHECKING:
    from tunesmith.config import RunConfig


class Task(Protocol):
    """The registered object is never changed by a run: `start()` gives the object one run (or one
    evaluation) works with, and whatever that run keeps (reward source, the reference switch, a rollout
    cache, a value head) lives there. A training run calls, in this order (`training.build_session`):
    prepare → load_model → objective → before_training → make_collate, then the loop's collate per step."""

    name: str
    config: type[TaskSection]  # its `task:` section (each task's own keys and traits)

    def start(self) -> Task:
        """A fresh object for one run."""
        ...

    def prepare(
        self, cfg: RunConfig, tokenizer: Any, renderer: ChatRenderer | None, labels: list[str] | None = None
    ) -> PreparedData:
        """Config's data → tokenized train/eval samples (labels: a fixed class list, e.g. a run's)."""
        ...

    def load_model(
        self, source: ModelSource, cfg: RunConfig, labels: list[str], tokenizer: Any = None, **extra: Any
    ) -> nn.Module:
        """The pretrained model with the head this task trains."""
        ...

    def objective(self, model: nn.Module, cfg: RunConfig, data: PreparedData) -> nn.Module:
        """A module: batch tensors → loss summed over the batch's trained targets."""
        ...

    def metrics(
        self,
        model: nn.Module,
        tokenizer: Any,
        renderer: ChatRenderer | None,
        cfg: RunConfig,
        data: PreparedData,
    ) -> dict[str, Any]:
        """Task metrics on the eval data (beyond eval loss, which the loop measures for every task)."""
        ...

    has_eval_loss: bool
    probes_memorization: bool
    summary_metrics: tuple[str, ...]  # task metrics summary.json also holds as <metric>_before / _after
    estimable: bool  # `tunesmith estimate` can probe its step (no reference log-probs or rollouts needed)
    multi_process: bool  # runs in a job of several processes (its per-run state is the same on every rank)

    def rows(self, samples: list[TokenizedSample], cfg: RunConfig) -> list[list[TokenizedSample]]:
        """Samples → the rows batches are made of (packed bins, single samples, or answer pairs)."""
        ...

    def make_collate(
        self, model: nn.Module, tokenizer: Any, renderer: Any, cfg: RunConfig
    ) -> Callable[..., Batch]: ...

    def collate(self, rows: list[list[TokenizedSample]], pad_id: int, packed: bool) -> Batch: ...

    def before_training(
        self, model: nn.Module, method: Any, cfg: RunConfig, data: PreparedData, run_dir: Path
    ) -> None:
        """Work on the untrained model before the first step (e.g. reference log-probs for DPO)."""
        ...

    def before_eval(
        self, model: nn.Module, reference: Callable[[], AbstractContextManager[Any]], cfg: RunConfig, data: PreparedData
    ) -> None:
        """Work before evaluating a loaded model outside training; REFERENCE() is a context in which MODEL
        is its base (e.g. DPO's reference log-probs of the eval answers)."""
        ...


class TaskDefaults:
    """The row / batch shape and hooks most tasks share."""

    config: type[TaskSection] = TaskSection
    has_eval_loss = True  # False: the objective cannot be evaluated on fixed held-out batches (RL)
    multi_process = True
    probes_memorization = False  # True: samples are LM answers the memorization probe can cut
    summary_metrics: tuple[str, ...] = ()
    estimable = True

    def start(self) -> Task:
        fresh: Any = type(self)()  # every registered task class builds without arguments
        return fresh  # type: ignore[no-any-return]

    def make_collate(
        self, model: nn.Module, tokenizer: Any, renderer: Any, cfg: RunConfig
    ) -> Callable[..., Batch]:
        """Rows → batch during training; RL tasks sample completions here (the rollout step)."""
        return self.collate

    def rows(self, samples: list[TokenizedSample], cfg: RunConfig) -> list[list[TokenizedSample]]:
        return build_rows(samples, cfg.data.max_length, bool(cfg.data.packing))

    def collate(self, rows: list[list[TokenizedSample]], pad_id: int, packed: bool) -> Batch:
        return collate(rows, pad_id, packed)

    def before_training(
        self, model: nn.Module, method: Any, cfg: RunConfig, data: PreparedData, run_dir: Path
    ) -> None:
        return None

    def before_eval(
        self, model: nn.Module, reference: Callable[[], AbstractContextManager[Any]], cfg: RunConfig, data: PreparedData
    ) -> None:
        return None
