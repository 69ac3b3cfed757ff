"""Advantage estimators for group-sampled RL (several completions per prompt, no value model), as pure
functions of the rewards, interchangeable by name (`task: {name: grpo, advantage: rloo}`).

rewards (N·G,) are ordered group by group; each function returns one advantage per completion (N·G,).
- grpo (Shao et al., 2024, §4.1.2):       (r − mean_group) / (std_group + 1e-4)
- dr_grpo (Liu et al., 2025, "Understanding R1-Zero-Like Training", §3.1): r − mean_group (no std
  scaling, which biases toward easy and hard prompts)
- rloo (Ahmadian et al., 2024, Eq. 7):   r_i − mean_{j≠i} r_j = G/(G−1) · (r_i − mean_group)
- reinforce_pp (Hu, 2025, REINFORCE++ §3.2 with group baseline): r − mean_group, then whitened over the
  whole batch
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from tunesmith.objectives.grpo import group_advantages


def dr_grpo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    return group_advantages(rewards, group_size, scale=False)


def rloo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    grouped = rewards.view(-1, group_size)  # (N, G)
    others = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)  # leave-one-out baseline
    return (grouped - others).reshape(-1)


def reinforce_pp_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    centred = group_advantages(rewards, group_size, scale=False)
    return (centred - centred.mean()) / (centred.std() + 1e-8) if centred.numel() > 1 else centred


ADVANTAGES: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "grpo": group_advantages,
    "dr_grpo": dr_grpo_advantages,
    "rloo": rloo_advantages,
    "reinforce_pp": reinforce_pp_advantages,
}
