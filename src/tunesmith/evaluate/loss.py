"""Held-out loss and perplexity: token-weighted over the whole set, on trained (answer) tokens only,
batched exactly as training evaluates."""

from __future__ import annotations

import math
from typing import Any

import torch

from tunesmith.config import RunConfig
from tunesmith.data.packing import Batch, build_rows, collate
from tunesmith.data.records import TokenizedSample
from tunesmith.objectives.logprobs import TrainedTokenLM


def build_eval_batches(
    samples: list[TokenizedSample], cfg: RunConfig, pad_id: int, rank: int = 0, world: int = 1
) -> list[Batch]:
    packed = bool(cfg.data.packing)
    rows = build_rows(samples, cfg.data.max_length, packed)[rank::world]
    size = cfg.eval.batch_size or cfg.train.batch_size
    rows.sort(key=lambda row: -sum(len(s) for s in row))  # similar lengths together: less padding
    return [collate(rows[i : i + size], pad_id, packed) for i in range(0, len(rows), size)]


@torch.no_grad()
def compute_eval_loss(model: Any, batches: list[Batch]) -> dict[str, float]:
    """{eval_loss, perplexity, eval_tokens} of one model (the active adapter, if several are loaded)."""
    wrapped = TrainedTokenLM(model)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum, count = 0.0, 0
    for batch in batches:
        inputs = {k: v.to(device) for k, v in batch.model_inputs().items()}
        loss_sum += float(wrapped(**inputs))
        count += batch.num_trained
    model.train(was_training)
    loss = loss_sum / max(count, 1)
    return {"eval_loss": loss, "perplexity": math.exp(min(loss, 50.0)), "eval_tokens": float(count)}
