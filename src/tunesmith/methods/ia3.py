"""IA3 through peft (Liu et al., 2022, "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper
than In-Context Learning"): learned vectors rescale the keys, values and the MLP's inner activations.
Merging multiplies the vectors into the weights."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from torch import nn

from tunesmith.errors import UserError
from tunesmith.methods.peft_method import PeftMethod, peft_task_type
from tunesmith.models.anatomy import check_targets, matches, weight_layers
from tunesmith.sections import MethodSection


class Ia3Config(MethodSection):
    name: Literal["ia3"] = "ia3"
    target_modules: str | list[str] | None = Field(
        None, description="modules whose activations are rescaled; default: peft's per-architecture choice"
    )
    feedforward_modules: list[str] | None = Field(
        None, description="targets whose input (not output) is rescaled; default: the MLP targets"
    )


class Ia3Method(PeftMethod):
    name = "ia3"
    config: type[MethodSection] = Ia3Config
    mergeable = True

    def peft_config(self, model: nn.Module, cfg: Any) -> Any:
        from peft import IA3Config
        from peft.utils import (
            TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as DEFAULT_FEEDFORWARD,
        )
        from peft.utils import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as DEFAULT_TARGETS

        model_type = getattr(getattr(model, "config", None), "model_type", "")
        targets = cfg.target_modules
        if targets is None:
            if model_type not in DEFAULT_TARGETS:
                candidates = sorted({n.rsplit(".", 1)[-1] for n in weight_layers(model)})
                raise UserError(
                    f"method.target_modules: peft has no default IA3 targets for {model_type or 'this model'}; "
                    f"list them (candidates: {', '.join(candidates)})"
                )
            targets = list(DEFAULT_TARGETS[model_type])
        if isinstance(targets, str):
            raise UserError("method.target_modules: ia3 needs a list of module names")
        check_targets(model, targets, "method.target_modules")
        feedforward = cfg.feedforward_modules
        if feedforward is None:
            feedforward = [t for t in DEFAULT_FEEDFORWARD.get(model_type, []) if t in targets]
        stray = [f for f in feedforward if not any(matches(f, t) or f == t for t in targets)]
        if stray:
            raise UserError(f"method.feedforward_modules: {', '.join(stray)} not among method.target_modules")
        return IA3Config(
            target_modules=targets, feedforward_modules=feedforward, task_type=peft_task_type(model)
        )
