"""The Method protocol: apply to a model, save what was trained, and merge for export."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from torch import nn

from tunesmith.config import MethodConfig


class Method(Protocol):
    name: str

    def apply(self, model: nn.Module, cfg: MethodConfig) -> nn.Module:
        """Make the parameters this method trains trainable (and only those)."""
        ...

    def save(self, model: nn.Module, out_dir: Path) -> None:
        """Write what was trained in its ecosystem format (peft adapter folder, HF model folder)."""
        ...

    def load_trained(self, base: nn.Module, trained_dir: Path) -> nn.Module:
        """Base model + saved result → the trained model."""
        ...

    def merge(self, model: nn.Module) -> Any:
        """A plain transformers model with the training folded into its weights."""
        ...


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; tied weights are counted once."""
    seen: set[int] = set()
    trainable = total = 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return trainable, total
