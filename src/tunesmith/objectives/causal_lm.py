"""Next-token cross-entropy, summed over trained tokens.

The loss is a *sum*; the training loop divides by the number of trained tokens across every
micro-batch of an optimizer step, so gradient accumulation equals the larger batch exactly
(a per-micro-batch mean would weight tokens of short micro-batches more).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def causal_lm_loss_sum(
    logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Sum of -log p(target) over the given positions.

    logits: (N, V) scores at the trained positions only; targets: (N,) the next tokens.
    label_smoothing ε mixes the one-hot target with a uniform one, (1−ε)·y + ε/V (Szegedy et al. 2016,
    "Rethinking the Inception Architecture", §7): a regulariser against over-confident memorisation.
    Returns a scalar (fp32).
    """
    return F.cross_entropy(logits.float(), targets, reduction="sum", label_smoothing=label_smoothing)
