"""VeRA (Kopiczko et al., 2024, "VeRA: Vector-based Random Matrix Adaptation", Eq. 1): one pair of frozen
random matrices A (r × in) and B (out × r) shared by every adapted layer, and per layer two trained
vectors, d (r) and b (out): ΔW x = Λ_b B Λ_d A x. Through peft. At the same rank it trains a small
fraction of LoRA's parameters (d and b only), so it takes a high rank (256 by default) and a higher
learning rate. The random matrices come from `projection_prng_key` and are saved with the adapter.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from torch import nn

from tunesmith.methods.peft_method import PeftMethod, peft_task_type
from tunesmith.models.anatomy import check_targets
from tunesmith.sections import MethodSection


class VeraConfig(MethodSection):
    name: Literal["vera"] = "vera"
    r: int = Field(256, ge=1, description="rank of the shared random matrices")
    target_modules: str | list[str] | None = Field(
        None, description="modules the method wraps: a list of names, or all-linear (the default)"
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the VeRA input")
    d_initial: float = Field(0.1, gt=0, description="initial value of the scaling vector d (b starts at 0)")
    projection_prng_key: int = Field(0, ge=0, description="seed of the shared random matrices A and B")


class VeraMethod(PeftMethod):
    name = "vera"
    config: type[MethodSection] = VeraConfig
    mergeable = True

    def peft_config(self, model: nn.Module, cfg: Any) -> Any:
        from peft import VeraConfig as PeftVeraConfig

        targets = cfg.target_modules or "all-linear"
        if isinstance(targets, list):
            check_targets(model, targets, "method.target_modules")
        return PeftVeraConfig(
            r=cfg.r,
            target_modules=targets,
            vera_dropout=cfg.dropout,
            d_initial=cfg.d_initial,
            projection_prng_key=cfg.projection_prng_key,
            save_projection=True,  # the adapter folder is whole: no seed-dependent regeneration on load
            task_type=peft_task_type(model),
        )
