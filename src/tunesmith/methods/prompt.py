"""Soft prompt tuning through peft (Lester et al., 2021): trained embeddings of `num_virtual_tokens`
pseudo-tokens in front of every input; only those embeddings learn. Initialised randomly or from the
embeddings of `prompt_init_text`."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field
from torch import nn

from tunesmith.methods.peft_method import VirtualTokenMethod, peft_task_type
from tunesmith.sections import MethodSection


class PromptConfig(MethodSection):
    name: Literal["prompt"] = "prompt"
    packable: ClassVar[bool] = False  # virtual tokens are prepended to each sample
    num_virtual_tokens: int = Field(20, ge=1, description="learned soft-prompt length")
    prompt_init_text: str | None = Field(
        None, description="initialise the soft prompt from this text's token embeddings"
    )


class PromptMethod(VirtualTokenMethod):
    name = "prompt"
    config: type[MethodSection] = PromptConfig

    def peft_config(self, model: nn.Module, cfg: Any) -> Any:
        from peft import PromptTuningConfig

        from_text = cfg.prompt_init_text is not None
        return PromptTuningConfig(
            num_virtual_tokens=cfg.num_virtual_tokens,
            prompt_tuning_init="TEXT" if from_text else "RANDOM",
            prompt_tuning_init_text=cfg.prompt_init_text,
            tokenizer_name_or_path=getattr(model, "name_or_path", None) if from_text else None,
            task_type=peft_task_type(model),
        )
