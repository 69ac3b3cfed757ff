"""Held-out loss and perplexity: token-weighted over the whole set, on trained (answer) tokens only,
batched exactly as training evaluates."""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from tunesmith.data.packing import Batch, build_rows, collate
from tunesmith.data.records import TokenizedSample
from tunesmith.modes import eval_mode

if TYPE_CHECKING:
    from tunesmith.config import RunConfig


def build_eval_batches(
    samples: list[TokenizedSample],
    cfg: RunConfig,
    pad_id: int,
    rank: int = 0,
    world: int = 1,
    task: Any = None,
) -> list[Batch]:
    """Eval batches shaped as the task shapes training batches (default: packed or single rows)."""
    packed = bool(cfg.data.packing)
    rows = task.rows(samples, cfg) if task is not None else build_rows(samples, cfg.data.max_length, packed)
    rows = rows[rank::world]
    size = cfg.eval.batch_size or cfg.train.batch_size
    rows.sort(key=lambda row: -sum(len(s) for s in row))  # similar lengths together: less padding
    make = task.collate if task is not None else collate
    return [make(rows[i : i + size], pad_id, packed) for i in range(0, len(rows), size)]


@torch.no_grad()
def compute_eval_loss(objective: nn.Module, batches: list[Batch], accelerator: Any = None) -> float:
    """Mean loss per trained target over all batches (not a mean of batch means); OBJECTIVE maps batch
    tensors to a loss sum (a task's objective around the model, with its active adapter). With ACCELERATOR
    (training): its device and autocast, and the sums over every process, each holding its share."""
    device = accelerator.device if accelerator is not None else next(objective.parameters()).device
    autocast = accelerator.autocast if accelerator is not None else nullcontext
    if accelerator is not None:  # DDP's forward syncs buffers with every rank: ranks hold different batch counts
        objective = accelerator.unwrap_model(objective)
    loss_sum, count = torch.zeros((), device=device), 0
    with eval_mode(objective):
        for batch in batches:
            with autocast():
                loss_sum += objective(**{k: v.to(device) for k, v in batch.model_inputs().items()}).float()
            count += batch.num_trained
    if accelerator is not None and accelerator.num_processes > 1:
        loss_sum = accelerator.reduce(loss_sum, reduction="sum")
        count = int(accelerator.reduce(torch.tensor(count, device=device), reduction="sum").item())
    return float(loss_sum) / max(count, 1)
