"""Reward-model loss: Bradley–Terry on pairs (Ouyang et al., 2022, Eq. 1), with an optional margin
(Touvron et al., 2023, Llama 2, Eq. 2): −log σ(r_chosen − r_rejected − m)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    chosen_rewards: torch.Tensor,  # (B,)
    rejected_rewards: torch.Tensor,  # (B,)
    margin: torch.Tensor | None = None,  # (B,)
) -> torch.Tensor:
    """Per-pair losses (B,)."""
    diff = chosen_rewards - rejected_rewards
    if margin is not None:
        diff = diff - margin
    return -F.logsigmoid(diff)
