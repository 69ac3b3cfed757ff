"""Sampling completions from the policy for PPO and GRPO: the rollout step that comes before their loss.

Prompts are left-padded so that every completion starts right after its prompt; each prompt is
repeated `num_samples` times (GRPO's group). A completion ends at the first end-of-turn / EOS token,
which is kept: the policy must learn to stop too.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tunesmith.modes import eval_mode


@torch.no_grad()
def sample_completions(
    model: nn.Module,
    prompt_ids: list[list[int]],
    num_samples: int,
    max_new_tokens: int,
    temperature: float,
    stop_ids: list[int],
    pad_id: int,
    greedy: bool = False,
) -> list[list[int]]:
    """Completion token ids, prompt-major: [p0 s0, p0 s1, ..., p1 s0, ...]."""
    repeated = [ids for ids in prompt_ids for _ in range(num_samples)]
    width = max(len(ids) for ids in repeated)
    input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in repeated])
    attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in repeated])
    device = next(model.parameters()).device
    sampling: dict[str, Any] = (
        {"do_sample": False}
        if greedy
        else {
            "do_sample": True,
            "temperature": temperature,
            "top_k": 0,
            "top_p": 1.0,
        }
    )
    with eval_mode(model):
        out = model.generate(  # type: ignore[operator]
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            max_new_tokens=max_new_tokens,
            eos_token_id=stop_ids,
            pad_token_id=pad_id,
            **sampling,
        )
    completions = []
    for row in out[:, width:].tolist():
        cut = next((i + 1 for i, token in enumerate(row) if token in stop_ids), len(row))
        completions.append(row[:cut])
    return completions
