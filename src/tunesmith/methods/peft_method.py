"""What every peft-backed method shares: apply through `get_peft_model`, save in peft's own format
(so `peft.PeftModel.from_pretrained` loads it without tunesmith), several named adapters on one base,
and merging where peft can.

A method file only says how its peft config is built from `method.*` keys.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from tunesmith.errors import UserError
from tunesmith.methods.base import DEFAULT_NAME, MethodDefaults
from tunesmith.methods.dropout import lean_adapter_dropout

if TYPE_CHECKING:
    from tunesmith.config import RunConfig


def peft_task_type(model: nn.Module) -> str:
    """peft's task type for a transformers model class: decides which PeftModel subclass wraps it."""
    name = type(model).__name__
    if name.endswith("ForSequenceClassification"):
        return "SEQ_CLS"
    if name.endswith("ForTokenClassification"):
        return "TOKEN_CLS"
    if name.endswith(("ForCausalLM", "LMHeadModel")):
        return "CAUSAL_LM"
    return "FEATURE_EXTRACTION"


class PeftMethod(MethodDefaults):
    def peft_config(self, model: nn.Module, cfg: Any) -> Any:
        raise NotImplementedError

    def apply(self, model: nn.Module, cfg: Any) -> nn.Module:
        from peft import get_peft_model

        peft_model = get_peft_model(model, self.peft_config(model, cfg))  # type: ignore[arg-type]
        lean_adapter_dropout(peft_model)
        return peft_model

    def save(self, model: nn.Module, out_dir: Path) -> None:
        model.save_pretrained(out_dir)  # type: ignore[operator]

    def load_trained(self, model: nn.Module, trained_dir: Path, name: str = DEFAULT_NAME) -> nn.Module:
        from peft import PeftModel

        if isinstance(model, PeftModel):
            if name in model.peft_config:
                raise UserError(f"an adapter named {name!r} is already loaded on this base model")
            model.load_adapter(str(trained_dir), adapter_name=name)
            return model
        return PeftModel.from_pretrained(model, trained_dir, adapter_name=name)

    def activate(self, model: nn.Module, name: str | None) -> None:
        """Switch adapters in place; None runs the base (peft's own disable switch, no reload)."""
        stack: ExitStack | None = getattr(model, "_tunesmith_base_switch", None)
        if stack is not None:  # leave "base only" mode
            stack.close()
            model._tunesmith_base_switch = None  # type: ignore[assignment]
        if name is None:
            stack = ExitStack()
            stack.enter_context(model.disable_adapter())  # type: ignore[operator]
            model._tunesmith_base_switch = stack  # type: ignore[assignment]
        else:
            model.set_adapter(name)  # type: ignore[operator]

    def merge(self, model: nn.Module) -> Any:
        if not self.mergeable:
            return super().merge(model)
        return model.merge_and_unload()  # type: ignore[operator]


def model_context(model_config: Any) -> int | None:
    """Positions the model can attend over, from its config (None when it does not say)."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(model_config, key, None)
        if isinstance(value, int):
            return value
    return None


class VirtualTokenMethod(PeftMethod):
    """Prefix and prompt tuning: `num_virtual_tokens` extra positions in front of every sample."""

    shardable = False  # the virtual tokens' weights sit in peft's wrapper, outside the model FSDP shards

    def check_model(self, cfg: RunConfig, model_config: Any) -> None:
        context = model_context(model_config)
        needed = cfg.method.num_virtual_tokens + cfg.data.max_length
        if context is not None and needed > context:
            raise UserError(
                f"method.num_virtual_tokens: {cfg.method.num_virtual_tokens} virtual tokens + "
                f"data.max_length {cfg.data.max_length} exceed the model's context of {context} positions"
            )
