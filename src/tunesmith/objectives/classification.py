"""Classification loss: cross-entropy over classes, optionally class-weighted, returned as a *sum*
over examples so that the loop's normalisation by the step's example count keeps accumulation exact."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def classification_loss_sum(
    logits: torch.Tensor,  # (B, C)
    targets: torch.Tensor,  # (B,)
    class_weights: torch.Tensor | None = None,  # (C,)
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Σ_i w[y_i] · −log softmax(logits_i)[y_i]; w = 1 without class weights; label smoothing as in
    `causal_lm_loss_sum`."""
    return F.cross_entropy(
        logits.float(), targets, weight=class_weights, reduction="sum", label_smoothing=label_smoothing
    )


def balanced_class_weights(counts: list[int]) -> torch.Tensor:
    """w_c = N / (C · n_c) (scikit-learn's "balanced"): each class weighs the same in total."""
    total, classes = sum(counts), len(counts)
    return torch.tensor([total / (classes * max(n, 1)) for n in counts], dtype=torch.float32)


class SequenceClassifierLoss(nn.Module):
    """forward(batch tensors) → loss sum, for a *ForSequenceClassification model (or its peft wrapper)."""

    def __init__(
        self, model: nn.Module, class_weights: torch.Tensor | None = None, label_smoothing: float = 0.0
    ) -> None:
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing  # training only
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        class_labels: torch.Tensor,  # (B,)
        attention_mask: torch.Tensor | None = None,  # (B, T)
        labels: torch.Tensor | None = None,  # token labels: unused here
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, C)
        weights = self.class_weights if isinstance(self.class_weights, torch.Tensor) else None
        return classification_loss_sum(
            logits, class_labels, weights, self.label_smoothing if self.training else 0.0
        )
