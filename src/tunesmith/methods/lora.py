"""The LoRA family through peft.

- `lora` (Hu et al., 2021): W + (alpha / r) · B A on chosen layers; `use_rslora` scales by
  alpha / sqrt(r) (Kalajdzievski, 2023); `init` picks peft's initialisations (gaussian, PiSSA —
  Meng et al., 2024 —, OLoRA — Büyükakyüz, 2024).
- `dora` (Liu et al., 2024): the update split into magnitude and direction.

PiSSA and OLoRA move the base weights at init; at save time peft converts their adapter into an
ordinary LoRA against the untouched base, so the saved folder works with plain `PeftModel` loading.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from tunesmith.config import MethodConfig
from tunesmith.errors import UserError
from tunesmith.methods.peft_method import PeftMethod, peft_task_type
from tunesmith.models.anatomy import check_targets, layer_dims

INITS: dict[str, bool | str] = {"default": True, "gaussian": "gaussian", "pissa": "pissa", "olora": "olora"}
MOVES_BASE = {"pissa", "olora"}


class LoraMethod(PeftMethod):
    name = "lora"
    mergeable = True
    use_dora = False

    def peft_config(self, model: nn.Module, cfg: MethodConfig) -> Any:
        from peft import LoraConfig

        targets = cfg.target_modules or "all-linear"
        if isinstance(targets, list):
            check_targets(model, targets, "method.target_modules")
        if cfg.modules_to_save:
            check_targets(model, cfg.modules_to_save, "method.modules_to_save")
        return LoraConfig(
            r=cfg.r,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules=targets,
            use_rslora=cfg.use_rslora,
            use_dora=self.use_dora,
            init_lora_weights=INITS[cfg.init],  # type: ignore[arg-type]
            modules_to_save=cfg.modules_to_save or None,
            task_type=peft_task_type(model),
        )

    def lr_scale(self, cfg: MethodConfig) -> Callable[[str], float] | None:
        """LoRA+ (Hayou et al., 2024, §4): B (and embedding B) at ratio × the learning rate of A."""
        ratio = cfg.loraplus_lr_ratio
        if ratio is None:
            return None
        return lambda name: ratio if ".lora_B." in name or ".lora_embedding_B." in name else 1.0

    def apply(self, model: nn.Module, cfg: MethodConfig) -> nn.Module:
        peft_model = super().apply(model, cfg)
        check_rank(peft_model, cfg.r)
        if cfg.init in MOVES_BASE:
            keep_initial_adapter(peft_model)
        return peft_model

    def save(self, model: nn.Module, out_dir: Path) -> None:
        initial: Path | None = getattr(model, "_tunesmith_initial_adapter", None)
        if initial is None:
            model.save_pretrained(out_dir)  # type: ignore[operator]
            return
        # peft rewrites the adapter as plain LoRA (rank 2r) against the original base weights
        model.save_pretrained(out_dir, path_initial_model_for_weight_conversion=str(initial))  # type: ignore[operator]


class DoraMethod(LoraMethod):
    name = "dora"
    use_dora = True


def check_rank(model: nn.Module, r: int) -> None:
    """A rank above min(in, out) of a wrapped layer adds parameters without adding expressiveness."""
    from peft.tuners.lora import LoraLayer

    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and hasattr(module.get_base_layer(), "weight"):
            fan_in, fan_out = layer_dims(module.get_base_layer())
            if r > min(fan_in, fan_out):
                raise UserError(
                    f"method.r: {r} is larger than {name.removeprefix('base_model.model.')} allows "
                    f"({fan_in} → {fan_out}, rank at most {min(fan_in, fan_out)})"
                )


def keep_initial_adapter(model: nn.Module) -> None:
    """Save the freshly initialised PiSSA/OLoRA adapter; `save` needs it for the conversion."""
    folder = Path(tempfile.mkdtemp(prefix="tunesmith-initial-adapter-"))
    config: Any = model.peft_config["default"]  # type: ignore[index]
    init = config.init_lora_weights
    config.init_lora_weights = True  # the saved initial adapter must not be re-initialised on load
    model.save_pretrained(folder)  # type: ignore[operator]
    config.init_lora_weights = init
    model._tunesmith_initial_adapter = folder  # type: ignore[assignment]
