"""Full fine-tuning: every weight learns; the result is a standard model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from tunesmith.config import MethodConfig


class FullMethod:
    name = "full"

    def apply(self, model: nn.Module, cfg: MethodConfig) -> nn.Module:
        model.requires_grad_(True)
        return model

    def save(self, model: nn.Module, out_dir: Path) -> None:
        model.save_pretrained(out_dir)  # type: ignore[operator]

    def load_trained(self, base: nn.Module, trained_dir: Path) -> nn.Module:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(trained_dir, dtype=base.dtype)  # type: ignore[no-any-return]

    def merge(self, model: nn.Module) -> Any:
        return model
