"""GRPO (Shao et al., 2024, DeepSeekMath §4.1): several completions per prompt, advantages normalised
within each group, no value model; the KL to the reference enters the loss through the unbiased
"k3" estimator exp(ref − π) − (ref − π) − 1 (Schulman, 2020)."""

from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, group_size: int, scale: bool = True) -> torch.Tensor:
    """rewards (N·G,) ordered group by group → (r − mean_group) / (std_group + 1e-4), (N·G,)."""
    grouped = rewards.view(-1, group_size)  # (N, G)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        centred = centred / (grouped.std(dim=1, keepdim=True) + 1e-4)
    return centred.reshape(-1)


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token KL(π ‖ ref) estimate, ≥ 0, (B, T)."""
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1


def grpo_loss(
    logprobs: torch.Tensor,  # (B, T) current policy
    old_logprobs: torch.Tensor,  # (B, T) at sampling time
    ref_logprobs: torch.Tensor | None,  # (B, T), None when beta = 0
    advantages: torch.Tensor,  # (B,) one per completion
    mask: torch.Tensor,  # (B, T)
    clip_range: float,
    beta: float,
) -> torch.Tensor:
    """Per-token clipped surrogate + β·KL, summed over masked tokens (the caller divides by the count)."""
    ratio = torch.exp(logprobs - old_logprobs)
    adv = advantages.unsqueeze(-1)
    per_token = -torch.minimum(ratio * adv, torch.clamp(ratio, 1 - clip_range, 1 + clip_range) * adv)
    if beta and ref_logprobs is not None:
        per_token = per_token + beta * k3_kl(logprobs, ref_logprobs)
    return (per_token * mask).sum()
