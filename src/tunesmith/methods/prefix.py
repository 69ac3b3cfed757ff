"""Prefix tuning through peft (Li & Liang, 2021): trained key/value vectors prepended at every layer,
optionally produced by a two-layer MLP during training (the paper's reparameterisation).

peft feeds the prefixes as a pre-filled cache, which works with transformers 5's cache classes
(checked by the method tests for LLaMA- and GPT-2-style models)."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Literal

from pydantic import Field
from torch import nn

from tunesmith.errors import UserError
from tunesmith.methods.peft_method import VirtualTokenMethod, peft_task_type
from tunesmith.sections import MethodSection


class PrefixConfig(MethodSection):
    name: Literal["prefix"] = "prefix"
    packable: ClassVar[bool] = False  # virtual tokens are prepended to each sample
    num_virtual_tokens: int = Field(20, ge=1, description="learned prefix length")
    prefix_projection: bool = Field(
        False, description="reparameterise the prefixes through a two-layer MLP (Li & Liang, 2021)"
    )
    projection_hidden_size: int = Field(512, ge=1, description="hidden size of that MLP")


class PrefixMethod(VirtualTokenMethod):
    name = "prefix"
    config: type[MethodSection] = PrefixConfig

    def peft_config(self, model: nn.Module, cfg: Any) -> Any:
        from peft import PrefixTuningConfig

        if not takes_prefix_cache(model):
            raise UserError(
                f"method.name: prefix feeds its prefixes through the key/value cache, which "
                f"{type(model).__name__} does not take; use prompt, lora or adapter for this model"
            )

        return PrefixTuningConfig(
            num_virtual_tokens=cfg.num_virtual_tokens,
            prefix_projection=cfg.prefix_projection,
            encoder_hidden_size=cfg.projection_hidden_size,
            task_type=peft_task_type(model),
        )


def takes_prefix_cache(model: nn.Module) -> bool:
    """Causal LMs take the prefixes as a cache; for other heads peft calls the backbone with
    `past_key_values`, which encoders such as BERT do not accept in transformers 5."""
    if peft_task_type(model) == "CAUSAL_LM":
        return True
    backbone = getattr(model, getattr(model, "base_model_prefix", ""), model)
    return "past_key_values" in inspect.signature(backbone.forward).parameters
