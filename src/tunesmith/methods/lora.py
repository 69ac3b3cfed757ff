"""LoRA through peft (Hu et al., 2021): low-rank updates W + (alpha / r) · B A on chosen linear layers.

Saved in peft's own format, so `peft.PeftModel.from_pretrained` loads it without tunesmith.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from tunesmith.config import MethodConfig
from tunesmith.errors import UserError


class LoraMethod:
    name = "lora"

    def apply(self, model: nn.Module, cfg: MethodConfig) -> nn.Module:
        from peft import LoraConfig, get_peft_model

        targets = cfg.target_modules
        if isinstance(targets, list):
            _check_targets(model, targets)
        config = LoraConfig(
            r=cfg.r,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules=targets,
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, config)  # type: ignore[arg-type]

    def save(self, model: nn.Module, out_dir: Path) -> None:
        model.save_pretrained(out_dir)  # type: ignore[operator]

    def load_trained(self, base: nn.Module, trained_dir: Path) -> nn.Module:
        from peft import PeftModel

        return PeftModel.from_pretrained(base, trained_dir)

    def merge(self, model: nn.Module) -> Any:
        return model.merge_and_unload()  # type: ignore[operator]


def _check_targets(model: nn.Module, targets: list[str]) -> None:
    linear_names = sorted(
        {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    )
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n, _ in model.named_modules())]
    if missing:
        raise UserError(
            f"method.target_modules: {', '.join(missing)} match no module; candidates: {', '.join(linear_names)}"
        )
