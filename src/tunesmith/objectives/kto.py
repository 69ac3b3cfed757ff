"""KTO (Ethayarajh et al., 2024, Eq. 7–8): unpaired thumbs-up / thumbs-down data.

With r = log π(y|x) − log ref(y|x) and z0 a (detached, non-negative) estimate of KL(π ‖ ref):
  desirable:    λ_D · (1 − σ(β (r − z0)))
  undesirable:  λ_U · (1 − σ(β (z0 − r)))
"""

from __future__ import annotations

import torch


def kto_loss(
    policy_logps: torch.Tensor,  # (B,) summed completion log-probs
    ref_logps: torch.Tensor,  # (B,)
    desirable: torch.Tensor,  # (B,) bool
    kl: torch.Tensor,  # () reference point z0, detached
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> torch.Tensor:
    """Per-example losses (B,)."""
    logratios = policy_logps - ref_logps
    good = desirable_weight * (1 - torch.sigmoid(beta * (logratios - kl)))
    bad = undesirable_weight * (1 - torch.sigmoid(beta * (kl - logratios)))
    return torch.where(desirable, good, bad)


def kto_reference_point(policy_logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """z0: the batch's mean log-ratio on mismatched (prompt, completion) pairs, clamped at 0, no gradient."""
    return (policy_logps - ref_logps).mean().clamp(min=0).detach()
