"""Held-out loss and perplexity: token-weighted over the whole set, on trained (answer) tokens only,
batched exactly as training evaluates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from tunesmith.data.packing import Batch, build_rows, collate
from tunesmith.data.records import TokenizedSample

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
def compute_eval_loss(objective: nn.Module, batches: list[Batch]) -> float:
    """Mean loss per trained target over all batches; `objective` maps batch tensors to a loss sum
    (a task's objective module around the model, with its active adapter)."""
    was_training = objective.training
    objective.eval()
    device = next(objective.parameters()).device
    loss_sum, count = 0.0, 0
    for batch in batches:
        inputs = {k: v.to(device) for k, v in batch.model_inputs().items()}
        loss_sum += float(objective(**inputs))
        count += batch.num_trained
    objective.train(was_training)
    return loss_sum / max(count, 1)
