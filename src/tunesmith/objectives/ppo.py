"""PPO for language models (Schulman et al., 2017; Ziegler et al., 2019; Ouyang et al., 2022), as pure
functions over per-token tensors of shape (B, T) with a 0/1 `mask` of completion tokens.

- per-token reward: −β · (log π − log ref) at every token, plus the score at the last token
- GAE (Schulman et al., 2016, Eq. 16): δ_t = r_t + γ V_{t+1} − V_t, A_t = Σ_l (γλ)^l δ_{t+l}
- clipped surrogate (PPO Eq. 7): −min(ρ A, clip(ρ, 1 ± ε) A), ρ = exp(log π − log π_old)
- clipped value loss: ½ max((V − R)², (clip(V, V_old ± ε_v) − R)²)
"""

from __future__ import annotations

import torch


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """Normalise to unit variance (and zero mean) over the masked entries."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    return out if shift_mean else out + mean


def kl_penalised_rewards(
    scores: torch.Tensor,  # (B,) reward of each whole completion
    logprobs: torch.Tensor,  # (B, T) of the sampled tokens under the policy at sampling time
    ref_logprobs: torch.Tensor,  # (B, T)
    mask: torch.Tensor,  # (B, T)
    kl_coef: float,
) -> torch.Tensor:
    """(B, T) per-token rewards: the KL penalty everywhere, the score added at each last completion token."""
    rewards = -kl_coef * (logprobs - ref_logprobs) * mask
    last = (mask.cumsum(-1) == mask.sum(-1, keepdim=True)) & (mask > 0)  # (B, T) one True per row
    return rewards + last * scores.unsqueeze(-1)


def compute_gae(
    rewards: torch.Tensor,  # (B, T)
    values: torch.Tensor,  # (B, T)
    mask: torch.Tensor,  # (B, T)
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns), both (B, T); positions outside the mask carry zero."""
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    next_value = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * m
        advantages[:, t] = running
        next_value = torch.where(m > 0, values[:, t], next_value)
    returns = (advantages + values) * mask
    return advantages, returns


def ppo_policy_loss(
    logprobs: torch.Tensor,  # (B, T) current policy
    old_logprobs: torch.Tensor,  # (B, T) at rollout time
    advantages: torch.Tensor,  # (B, T)
    mask: torch.Tensor,  # (B, T)
    clip_range: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss summed over masked tokens, clip fraction)."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
    loss = torch.maximum(unclipped, clipped)
    clip_fraction = masked_mean((clipped > unclipped).float(), mask)
    return (loss * mask).sum(), clip_fraction


def ppo_value_loss(
    values: torch.Tensor,  # (B, T)
    old_values: torch.Tensor,  # (B, T)
    returns: torch.Tensor,  # (B, T)
    mask: torch.Tensor,  # (B, T)
    clip_range_value: float,
) -> torch.Tensor:
    """½ max of the unclipped and clipped squared errors, summed over masked tokens."""
    clipped = old_values + torch.clamp(values - old_values, -clip_range_value, clip_range_value)
    loss = 0.5 * torch.maximum((values - returns) ** 2, (clipped - returns) ** 2)
    return (loss * mask).sum()


class AdaptiveKLController:
    """Ziegler et al. (2019), §2.2: β ← β · (1 + K_β · clip(KL / target − 1, ±0.2) · n / horizon)."""

    def __init__(self, init_kl_coef: float, target: float, horizon: int) -> None:
        self.value, self.target, self.horizon = init_kl_coef, target, horizon

    def update(self, current_kl: float, n_steps: int) -> float:
        error = min(max(current_kl / self.target - 1, -0.2), 0.2)
        self.value *= 1 + error * n_steps / self.horizon
        return self.value
