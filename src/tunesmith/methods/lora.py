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
from typing import Any, Literal

from pydantic import Field
from torch import nn

from tunesmith.errors import UserError
from tunesmith.methods.peft_method import PeftMethod, peft_task_type
from tunesmith.models.anatomy import check_targets, layer_dims
from tunesmith.sections import MethodSection

INITS: dict[str, bool | str] = {"default": True, "gaussian": "gaussian", "pissa": "pissa", "olora": "olora"}
MOVES_BASE = {"pissa", "olora"}


class LoraConfig(MethodSection):
    """LoRA's keys (shared by dora and qlora)."""

    name: Literal["lora"] = "lora"
    r: int = Field(16, ge=1, description="LoRA rank")
    alpha: int = Field(32, gt=0, description="LoRA scaling numerator (scale = alpha / r, or alpha / sqrt(r))")
    dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the LoRA input")
    target_modules: str | list[str] | None = Field(
        None, description="modules the method wraps: a list of names, or all-linear (the default)"
    )
    use_rslora: bool = Field(False, description="rank-stabilised LoRA: scale alpha / sqrt(r)")
    loraplus_lr_ratio: float | None = Field(
        None, gt=0, description="LoRA+ (Hayou et al., 2024): B matrices learn this many times faster than A (e.g. 16)"
    )
    init: Literal["default", "gaussian", "pissa", "olora"] = Field(
        "default",
        description="LoRA init: default (B = 0), gaussian, pissa (principal singular vectors), olora",
    )
    modules_to_save: list[str] = Field(
        default_factory=list, description="extra modules trained in full and saved (e.g. lm_head)"
    )


class DoraConfig(LoraConfig):
    name: Literal["dora"] = "dora"  # type: ignore[assignment]


class LoraMethod(PeftMethod):
    name = "lora"
    config: type[MethodSection] = LoraConfig
    mergeable = True
    use_dora = False

    def peft_config(self, model: nn.Module, cfg: Any) -> Any:
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

    def lr_scale(self, cfg: Any) -> Callable[[str], float] | None:
        """LoRA+ (Hayou et al., 2024, §4): B (and embedding B) at ratio × the learning rate of A."""
        ratio = cfg.loraplus_lr_ratio
        if ratio is None:
            return None
        return lambda name: ratio if ".lora_B." in name or ".lora_embedding_B." in name else 1.0

    def apply(self, model: nn.Module, cfg: Any) -> nn.Module:
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
    config: type[MethodSection] = DoraConfig
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
