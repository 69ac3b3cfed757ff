"""Measure what a training step keeps and costs, from the model's config alone: the model is built with
one and with two of its blocks (random weights, no checkpoint read), the run's method applied, and a
forward + backward run on a batch shaped like the run's. A saved-tensors hook sums the bytes autograd keeps
for backward (activations and loss buffers, parameters excluded); the difference between the two builds
is one block's share, the rest is the embedding / head / loss part. Timing the same step gives the seconds
per block on this machine.

Why by hand: no library measures activation memory on CPU (torch's CUDA allocator statistics do not
exist there), and analytic formulas miss what the attention kernel, the method and the loss really keep.
"""

from __future__ import annotations

import copy
import statistics
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class ProbeResult:
    saved_per_block_mb: float  # activations one block keeps for backward
    saved_rest_mb: float  # embeddings, final norm, LM head and loss buffers
    seconds_per_block: float  # forward + backward of one block on the probe batch
    seconds_rest: float
    tokens: int  # tokens in the probe batch


def _saved_bytes_and_time(objective: nn.Module, batch: Any) -> tuple[int, float]:
    params = {p.untyped_storage().data_ptr() for p in objective.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
        return tensor

    inputs = batch.model_inputs()
    started = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = objective(**inputs)
    loss.backward()
    seconds = time.perf_counter() - started
    objective.zero_grad(set_to_none=True)
    return sum(seen.values()), seconds


def probe_step(build: Any, batch: Any, autocast: Any = nullcontext, repeats: int = 3) -> ProbeResult:
    """BUILD(num_blocks) → the objective module with the method applied; measured with 1 and 2 blocks,
    under AUTOCAST (the run's mixed precision: what is saved and how fast depend on it). The two are timed
    in turns and the median kept, so a slow moment of the machine falls on both."""
    objectives = {blocks: build(blocks) for blocks in (1, 2)}
    saved: dict[int, int] = {}
    times: dict[int, list[float]] = {1: [], 2: []}
    with autocast():
        for blocks, objective in objectives.items():
            objective.train()
            saved[blocks], _ = _saved_bytes_and_time(objective, copy.deepcopy(batch))  # also the warm-up
        for _ in range(repeats):
            for blocks, objective in objectives.items():
                times[blocks].append(_saved_bytes_and_time(objective, copy.deepcopy(batch))[1])
    one_time, two_time = statistics.median(times[1]), statistics.median(times[2])
    per_block = max(saved[2] - saved[1], 0)
    block_s = max(two_time - one_time, 0.0)
    return ProbeResult(
        saved_per_block_mb=per_block / 2**20,
        saved_rest_mb=max(saved[1] - per_block, 0) / 2**20,
        seconds_per_block=block_s,
        seconds_rest=max(one_time - block_s, 0.0),
        tokens=int(batch.input_ids.numel()),
    )


def adamw_seconds_per_param(numel: int = 16_000_000) -> tuple[float, float]:
    """(seconds per trainable parameter of what a step does beyond forward and backward: a fresh gradient,
    the clipping norm and the AdamW update; extra seconds of the first step, which allocates the moments).
    The forward and backward probe does not see this cost; it dominates full fine-tuning on a CPU."""
    weight = nn.Parameter(torch.zeros(numel))
    optimizer = torch.optim.AdamW([weight], lr=1e-4)

    def step() -> None:
        weight.grad = torch.ones(numel)  # gradients are set to None after every step: allocated anew
        torch.nn.utils.clip_grad_norm_([weight], 1.0)
        optimizer.step()

    started = time.perf_counter()
    step()
    first = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(3):
        step()
    steady = (time.perf_counter() - started) / 3
    return steady / numel, max(first - steady, 0.0) / numel
