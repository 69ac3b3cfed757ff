"""The one training loop.

accelerate owns devices, mixed precision and distribution; this loop owns the order of work: for each
optimizer step, collate this process's micro-batches, count trained tokens across all of them (and all
processes), backpropagate each micro-batch's loss *sum* divided by that count, clip, step, log,
evaluate, checkpoint. Dividing by the step's token count makes accumulation exactly the larger batch.
"""

from __future__ import annotations

import contextlib
import math
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tunesmith.data.batches import BatchPlan
from tunesmith.data.packing import Batch, collate
from tunesmith.engine.callbacks import Callback, Event, LoopState
from tunesmith.engine.distributed import any_rank
from tunesmith.engine.memory import is_out_of_memory
from tunesmith.engine.sharding import whole_tensor
from tunesmith.engine.stopping import StopSignal
from tunesmith.errors import UserError
from tunesmith.modes import perplexity
from tunesmith.sections import TrainConfig


@dataclass
class LoopParts:
    accelerator: Any
    model: nn.Module  # TrainedTokenLM, prepared by accelerate
    optimizer: Any
    scheduler: Any
    plan: BatchPlan
    pad_id: int
    packed: bool
    train_cfg: TrainConfig
    evaluate: Callable[[], float] | None  # → eval loss
    eval_every: int | None
    save_checkpoint: Callable[[int], None] | None
    save_every: int | None
    callbacks: Sequence[Callback]
    collate_fn: Callable[[list[list[Any]], int, bool], Batch] = collate  # the task's batch shape
    stop: StopSignal | None = None  # SIGTERM / SIGINT: checkpoint at the next step boundary, then stop


class NonFiniteError(UserError):
    """A non-finite loss or gradient norm under train.nan_policy: error (or too many skips in a row)."""


def peak_memory_mb() -> float:
    """Peak memory of this process: max CUDA allocation on GPU, max resident set size on CPU."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def system_metrics() -> dict[str, float]:
    """Per-step system numbers: the process's peak resident memory, and on CUDA the allocator's peak."""
    metrics = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        metrics["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return metrics


def run_loop(parts: LoopParts, state: LoopState) -> LoopState:
    last_save = time.monotonic()
    while state.step < state.total_steps and state.stop_reason is None:
        _stop_if_asked(parts, state)  # a signal during data preparation or the previous step
        record = train_step(parts, state)
        emit(parts.callbacks, Event.STEP_END, state, record)
        if (
            parts.evaluate
            and parts.eval_every
            and state.step % parts.eval_every == 0
            and state.step < state.total_steps
        ):
            run_evaluation(parts, state)
        minutes = parts.train_cfg.save_every_minutes
        due = (parts.save_every and state.step % parts.save_every == 0) or (
            minutes is not None and time.monotonic() - last_save >= 60 * minutes
        )
        due = any_rank(bool(due))  # each rank's own clock: they save together when any one is due
        if parts.save_checkpoint and due:
            _save(parts, state)
            last_save = time.monotonic()
    _stop_if_asked(parts, state)
    return state


def _save(parts: LoopParts, state: LoopState) -> None:
    assert parts.save_checkpoint is not None
    parts.save_checkpoint(state.step)
    state.last_saved_step = state.step
    emit(parts.callbacks, Event.CHECKPOINT, state, {"step": state.step})


def _stop_if_asked(parts: LoopParts, state: LoopState) -> None:
    if not any_rank(parts.stop is not None and parts.stop.requested is not None):
        return
    assert parts.stop is not None  # another rank's stop: every rank runs with one (pipeline.train)
    parts.stop.at_boundary()
    if parts.save_checkpoint and state.last_saved_step != state.step:
        _save(parts, state)
    raise parts.stop.stop_now(state.step)


def run_evaluation(parts: LoopParts, state: LoopState) -> float:
    assert parts.evaluate is not None
    eval_loss = parts.evaluate()
    state.last_eval_loss = eval_loss
    emit(parts.callbacks, Event.EVALUATE, state, eval_record(state.step, eval_loss))
    return eval_loss


def eval_record(step: int, eval_loss: float) -> dict[str, Any]:
    return {"step": step, "eval_loss": eval_loss, "eval_perplexity": perplexity(eval_loss)}


def emit(callbacks: Sequence[Callback], event: Event, state: LoopState, record: dict[str, Any]) -> None:
    for callback in callbacks:
        callback(event, state, record)


def train_step(parts: LoopParts, state: LoopState) -> dict[str, Any]:
    acc, model, cfg = parts.accelerator, parts.model, parts.train_cfg
    started = time.perf_counter()
    model.train()
    rows = parts.plan.step_at(state.step)
    start_step = getattr(parts.collate_fn, "start_step", None)  # a collate that spans steps (PPO's epochs)
    if start_step is not None:
        start_step(state.step)
    batches = [
        parts.collate_fn(m, parts.pad_id, parts.packed)
        for m in parts.plan.micro_batches(rows, acc.process_index)
    ]
    try:
        loss, num_trained = accumulate_gradients(acc, model, batches)
    except Exception as exc:
        if not (cfg.auto_micro_batch and is_out_of_memory(exc) and parts.plan.batch_size % 2 == 0):
            raise
        _halve_micro_batch(parts, state)
        return train_step(parts, state)  # the same rows, in twice as many micro-batches
    grad_norm = clip_gradients(acc, model, cfg.max_grad_norm)
    # with fp16 the grad scaler owns overflowing gradients (it skips that update and lowers its scale):
    # only a non-finite loss is ours to judge there
    scaled = getattr(acc, "scaler", None) is not None
    finite = math.isfinite(loss) and (scaled or math.isfinite(grad_norm))
    if finite:
        parts.optimizer.step()
        if not getattr(parts.optimizer, "step_was_skipped", False):  # fp16's scaler skipped an overflowing update
            parts.scheduler.step()
        state.consecutive_skips = 0
    else:
        _non_finite(parts, state, loss, grad_norm, rows)
    parts.optimizer.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - started
    real = global_sum(acc, sum(b.num_real for b in batches))
    padded = global_sum(acc, sum(b.num_total for b in batches))
    state.step += 1
    state.real_tokens += real
    state.padded_tokens += padded
    state.train_seconds += seconds
    state.last_loss = loss
    stats = {k: sum(b.stats[k] for b in batches) / len(batches) for k in batches[0].stats}
    stats.update(getattr(acc.unwrap_model(model), "step_stats", {}))  # what the objective measured (PPO)
    return {
        **stats,
        "step": state.step,
        "loss": loss,
        "lr": parts.scheduler.get_last_lr()[0],
        "grad_norm": grad_norm,
        "trained_tokens": num_trained,
        "real_tokens_per_s": real / seconds,
        "padded_tokens_per_s": padded / seconds,
        "padding_fraction": 1 - real / padded,
        "peak_memory_mb": peak_memory_mb(),
        **system_metrics(),
        "step_seconds": seconds,
        "skipped": not finite,
        "skipped_steps": state.skipped_steps,
    }


def _halve_micro_batch(parts: LoopParts, state: LoopState) -> None:
    """train.auto_micro_batch: half the rows per micro-batch, twice the accumulation — the step's rows and
    its token-normalised gradient stay exactly the same."""
    parts.optimizer.zero_grad(set_to_none=True)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    parts.plan.batch_size //= 2
    parts.plan.grad_accum *= 2
    state.micro_batch = parts.plan.batch_size


def _non_finite(parts: LoopParts, state: LoopState, loss: float, grad_norm: float, rows: list[int]) -> None:
    """train.nan_policy: stop naming the step and its records, or skip the update (weights untouched)."""
    cfg = parts.train_cfg
    sources = [s.source for m in parts.plan.micro_batches(rows, 0) for row in m for s in row]
    shown = ", ".join(sources[:6]) + (f" and {len(sources) - 6} more" if len(sources) > 6 else "")
    what = f"step {state.step + 1}: loss {loss}, gradient norm {grad_norm}"
    if cfg.nan_policy == "error":
        raise NonFiniteError(
            f"{what} (not finite) on the records {shown}; lower train.lr, check those records, or set "
            "train.nan_policy: skip_step"
        )
    state.skipped_steps += 1
    state.consecutive_skips += 1
    if state.consecutive_skips >= cfg.max_consecutive_skips:
        raise NonFiniteError(
            f"{what}: {state.consecutive_skips} updates in a row skipped for non-finite values "
            f"(train.max_consecutive_skips); last records {shown}"
        )


def accumulate_gradients(acc: Any, model: nn.Module, batches: list[Batch]) -> tuple[float, int]:
    """Backward over one step's micro-batches; returns (mean loss per trained token, trained tokens).

    Each micro-batch contributes loss_sum / N where N counts trained tokens across all micro-batches
    and processes, so the gradient is exactly that of one batch holding all of them.
    """
    num_trained = global_sum(acc, sum(b.num_trained for b in batches))
    loss_sum = torch.zeros((), device=acc.device)
    for index, batch in enumerate(batches):
        last = index == len(batches) - 1
        sync = contextlib.nullcontext() if last else acc.no_sync(model)
        with sync, acc.autocast():
            batch_loss = model(**to_device(batch, acc.device))
            # DDP averages gradients over processes; scale so the result is the global token mean
            acc.backward(batch_loss * acc.num_processes / num_trained)
        loss_sum += batch_loss.detach()
    return float(acc.reduce(loss_sum, reduction="sum")) / num_trained, num_trained


def global_sum(acc: Any, value: int) -> int:
    if acc.num_processes == 1:
        return value
    return int(acc.reduce(torch.tensor(value, device=acc.device), reduction="sum").item())


def to_device(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.model_inputs().items()}


def clip_gradients(acc: Any, model: nn.Module, max_norm: float | None) -> float:
    params = [p for p in model.parameters() if p.requires_grad]
    if max_norm is not None:
        return float(whole_tensor(acc.clip_grad_norm_(params, max_norm)))
    grads = [whole_tensor(p.grad.detach().norm(2)) for p in params if p.grad is not None]
    return float(torch.norm(torch.stack(grads), 2)) if grads else 0.0
