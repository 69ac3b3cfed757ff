"""Several processes, one run: the few things that differ when torchrun, `accelerate launch` or
`tunesmith train --nproc N` started this process as one rank of a job.

accelerate owns the process group (gloo on CPU, NCCL on CUDA) and DDP; this module only answers the
questions the run folder's writers ask (am I rank 0? wait for the others; what are every rank's RNG
states?) and agrees on a stop. In a single process every function is a no-op, so callers never branch on
the world size themselves.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from tunesmith.engine.sharding import is_sharded
from tunesmith.errors import UserError
from tunesmith.sections import DistributedConfig, TrainConfig


def launched_world_size() -> int:
    """The job's process count as its launcher (torchrun, accelerate launch) set it; 1 when not launched."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched() -> bool:
    """Started as one of several processes."""
    return launched_world_size() > 1


def init_process_group() -> None:
    """Join the job's process group through accelerate (once; before anything asks for a rank). On a
    machine without CUDA accelerate needs `cpu=True` to pick gloo, else it runs each rank alone."""
    if launched() and not dist.is_initialized():
        from accelerate.state import PartialState

        PartialState(cpu=not torch.cuda.is_available())


def check_job(
    config: DistributedConfig, train: TrainConfig, multi_process_task: bool, shardable_method: bool, world: int
) -> None:
    """What a job of WORLD processes cannot run is one line, before any process group starts."""
    if world <= 1:
        return
    if config.strategy == "deepspeed":
        raise UserError(
            "distributed.strategy deepspeed: not available yet (accelerate runs DeepSpeed on CUDA GPUs only, "
            "and tunesmith has not been proven with it); use distributed.strategy: fsdp (ZeRO-3's sharding, "
            "in PyTorch) or ddp"
        )
    if config.strategy == "fsdp" and not shardable_method:
        raise UserError(
            "distributed.strategy fsdp: this method keeps its trained weights outside the model's blocks "
            "(prefix and prompt tuning) or holds a quantized base (qlora), which FSDP does not shard here; "
            "use distributed.strategy: ddp"
        )
    if config.strategy != "fsdp" and config.fsdp_sharding != "full":
        raise UserError(f"distributed.fsdp_sharding applies to distributed.strategy: fsdp (this run uses {config.strategy})")
    if train.auto_micro_batch:  # one rank halving its micro-batch alone would leave the others waiting
        raise UserError("train.auto_micro_batch works in one process only; set it to false for --nproc > 1")
    if not multi_process_task:
        raise UserError(
            "this task samples rollouts per process, which a checkpoint does not keep yet: train it in one "
            "process (no --nproc)"
        )


def rank() -> int:
    """This process's rank; before the process group starts, what the launcher set (RANK)."""
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0: the one process that writes the run folder, the registry and the console."""
    return rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def gather(value: Any) -> list[Any]:
    """VALUE from every rank, in rank order. Pickled between this job's own processes only (what a
    checkpoint stores of it is written without pickle: see engine.checkpoint)."""
    if not dist.is_initialized():
        return [value]
    found: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(found, value)
    return found


Item = TypeVar("Item")
Result = TypeVar("Result")


def shared_map(fn: Callable[[list[Item]], list[Result]], items: list[Item], model: Any = None) -> list[Result]:
    """FN (a list → one result per item) over ITEMS, each rank computing every N-th item; every rank gets
    all the results in ITEMS' order. Evaluation's generation is shared this way instead of repeated. A
    sharded MODEL (FSDP: each forward is a collective every rank must join) repeats it whole on every rank,
    as does a single process."""
    if not dist.is_initialized() or dist.get_world_size() == 1 or (model is not None and is_sharded(model)):
        return fn(items)
    world, me = dist.get_world_size(), dist.get_rank()
    found: list[Any] = [None] * len(items)
    mine = items[me::world]
    for rank_index, part in enumerate(gather(fn(mine) if mine else [])):
        found[rank_index::world] = part
    return found


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on any: a signal that reached one rank stops all of them at the
    same step boundary (each saving its part of one checkpoint), never some of them a step later."""
    if not dist.is_initialized():
        return flag
    value = torch.tensor(int(flag), device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
