"""Soft prompt tuning through peft (Lester et al., 2021): trained embeddings of `num_virtual_tokens`
pseudo-tokens in front of every input; only those embeddings learn. Initialised randomly or from the
embeddings of `prompt_init_text`."""

from __future__ import annotations

from typing import Any

from torch import nn

from tunesmith.config import MethodConfig
from tunesmith.methods.peft_method import VirtualTokenMethod, peft_task_type


class PromptMethod(VirtualTokenMethod):
    name = "prompt"

    def peft_config(self, model: nn.Module, cfg: MethodConfig) -> Any:
        from peft import PromptTuningConfig

        from_text = cfg.prompt_init_text is not None
        return PromptTuningConfig(
            num_virtual_tokens=cfg.num_virtual_tokens,
            prompt_tuning_init="TEXT" if from_text else "RANDOM",
            prompt_tuning_init_text=cfg.prompt_init_text,
            tokenizer_name_or_path=getattr(model, "name_or_path", None) if from_text else None,
            task_type=peft_task_type(model),
        )
