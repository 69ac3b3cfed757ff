"""NEFTune: uniform noise on the input embeddings while training (Jain et al. 2023, "NEFTune: Noisy
Embeddings Improve Instruction Finetuning", Algorithm 1): ε ~ U(−1, 1) scaled by α / √(L·d), with L
the sequence length and d the embedding size. A forward hook on the embedding layer, active only in
training mode, so evaluation, generation and the saved weights are untouched."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def attach_neftune(model: nn.Module, alpha: float) -> Any:
    """Hook the model's input embeddings; returns the hook handle (`.remove()` detaches it)."""
    get_base = getattr(model, "get_base_model", None)
    base: Any = get_base() if callable(get_base) else model
    embeddings: nn.Module = base.get_input_embeddings()

    def add_noise(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        if not module.training:
            return output
        length, dim = output.shape[-2], output.shape[-1]
        scale = alpha / math.sqrt(length * dim)
        return output + torch.empty_like(output).uniform_(-scale, scale)

    return embeddings.register_forward_hook(add_noise)
