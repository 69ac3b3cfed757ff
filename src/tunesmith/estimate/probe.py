"""Measure what a training step keeps and costs, from the model's config alone: the model is built with
one and with three of its blocks (random weights, no checkpoint read), the run's method applied, and a
forward + backward run on a batch shaped like the run's. A saved-tensors hook sums the bytes autograd keeps
for backward (activations and loss buffers, parameters excluded); half the difference between the two
builds is one block's share, the rest is the embedding / head / loss part. Timing the same step gives the seconds
per block on this machine.

Why by hand: no library measures activation memory on CPU (torch's CUDA allocator statistics do not
exist there), and analytic formulas miss what the attention kernel, the method and the loss really keep.
"""

from __future__ import annotations

import copy
import mmap
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
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


PROBE_BLOCKS = (1, 3)  # two blocks apart: the per-block time is twice as far above the timing noise


def probe_step(build: Any, batch: Any, autocast: Any = nullcontext, repeats: int = 5) -> ProbeResult:
    """BUILD(num_blocks) → the objective module with the method applied; measured with 1 and 3 blocks,
    under AUTOCAST (the run's mixed precision: what is saved and how fast depend on it). The two are timed
    in turns and the fastest of REPEATS kept: a busy moment of the machine only ever adds time, and a
    median of three differences swung the per-block time by up to a factor of 4 from run to run."""
    few, many = PROBE_BLOCKS
    objectives = {blocks: build(blocks) for blocks in PROBE_BLOCKS}
    saved: dict[int, int] = {}
    times: dict[int, list[float]] = {blocks: [] for blocks in PROBE_BLOCKS}
    with autocast():
        for blocks, objective in objectives.items():
            objective.train()
            saved[blocks], _ = _saved_bytes_and_time(objective, copy.deepcopy(batch))  # also the warm-up
        for _ in range(repeats):
            for blocks, objective in objectives.items():
                times[blocks].append(_saved_bytes_and_time(objective, copy.deepcopy(batch))[1])
    few_time, many_time = min(times[few]), min(times[many])
    per_block = max(saved[many] - saved[few], 0) / (many - few)
    block_s = max(many_time - few_time, 0.0) / (many - few)
    return ProbeResult(
        saved_per_block_mb=per_block / 2**20,
        saved_rest_mb=max(saved[few] - per_block * few, 0) / 2**20,
        seconds_per_block=block_s,
        seconds_rest=max(few_time - block_s * few, 0.0),
        tokens=int(batch.input_ids.numel()),
    )


def adamw_seconds_per_param(numel: int = 16_000_000) -> float:
    """Seconds per trainable parameter of what a step does beyond forward and backward: a fresh gradient,
    the clipping norm and the AdamW update (steady state; the first step's fresh memory is
    `first_touch_seconds_per_byte`'s). The forward and backward probe does not see this cost; it dominates
    full fine-tuning on a CPU."""
    weight = nn.Parameter(torch.zeros(numel))
    optimizer = torch.optim.AdamW([weight], lr=1e-4)

    def step() -> None:
        weight.grad = torch.ones(numel)  # gradients are set to None after every step: allocated anew
        torch.nn.utils.clip_grad_norm_([weight], 1.0)
        optimizer.step()

    step()  # allocates the moments
    started = time.perf_counter()
    for _ in range(3):
        step()
    return (time.perf_counter() - started) / 3 / numel


def first_touch_seconds_per_byte(size: int = 128 * 2**20) -> float:
    """The kernel's cost of memory a process touches for the first time (a page fault and a zeroed page
    per 4 KiB), measured on a fresh anonymous mapping, which no allocator's cache can serve. A run's first
    step pays it for every byte it allocates beyond what the process already held: the optimizer's
    moments, the gradients and the activations (1.3 GB of AdamW moments took 1.8 s to create here, the
    update itself 0.16 s)."""
    mapping = mmap.mmap(-1, size)
    try:
        pages = np.frombuffer(mapping, dtype=np.uint8)
        started = time.perf_counter()
        pages[:: mmap.PAGESIZE] = 1
        seconds = time.perf_counter() - started
        del pages
    finally:
        mapping.close()
    return seconds / size
