"""Prefix tuning through peft (Li & Liang, 2021): trained key/value vectors prepended at every layer,
optionally produced by a two-layer MLP during training (the paper's reparameterisation).

peft feeds the prefixes as a pre-filled cache, which works with transformers 5's cache classes
(checked by the method tests for LLaMA- and GPT-2-style models)."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from tunesmith.config import MethodConfig
from tunesmith.errors import UserError
from tunesmith.methods.peft_method import VirtualTokenMethod, peft_task_type


class PrefixMethod(VirtualTokenMethod):
    name = "prefix"

    def peft_config(self, model: nn.Module, cfg: MethodConfig) -> Any:
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
