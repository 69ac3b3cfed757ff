"""Partial fine-tuning: the top `trainable_layers` blocks and/or the parameters whose names match
`trainable_modules` learn; everything else stays frozen.

Only the trained tensors are saved. Several freeze results share one base by swapping those tensors
in place (the originals are kept once), which is cheap because they are a small part of the model.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator
from torch import nn

from tunesmith.errors import UserError
from tunesmith.methods.base import DEFAULT_NAME, MethodDefaults
from tunesmith.methods.tensor_files import (
    activate_tensors,
    bank_tensors,
    load_trained_tensors,
    save_trained_tensors,
)
from tunesmith.models.anatomy import find_blocks, task_head
from tunesmith.sections import MethodSection


def name_matches(param_name: str, module_type: str, pattern: str) -> bool:
    """A pattern matches a parameter whose name contains it (glob wildcards allowed), or whose layer
    type does (`norm` finds LayerNorm and RMSNorm whatever the family calls them)."""
    glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    return fnmatch(param_name, glob) or fnmatch(module_type.lower(), glob.lower())


def named_parameters_with_type(model: nn.Module) -> list[tuple[str, str, nn.Parameter]]:
    """(name, owning layer's class name, parameter); tied weights appear under each of their names."""
    return [
        (f"{prefix}.{name}" if prefix else name, type(module).__name__, param)
        for prefix, module in model.named_modules(remove_duplicate=False)
        for name, param in module.named_parameters(recurse=False, remove_duplicate=False)
    ]


class FreezeConfig(MethodSection):
    name: Literal["freeze"] = "freeze"
    switchable: ClassVar[bool] = False  # the base weights themselves change
    trainable_layers: int | None = Field(None, ge=0, description="freeze: train the top k transformer blocks")
    trainable_modules: list[str] = Field(
        default_factory=list,
        description="freeze: also train parameters whose name or layer type contains one of these patterns "
        "(e.g. norm, lm_head; glob wildcards allowed)",
    )

    @model_validator(mode="after")
    def _something_trains(self) -> FreezeConfig:
        if self.trainable_layers is None and not self.trainable_modules:
            raise ValueError("method freeze needs trainable_layers and/or trainable_modules")
        return self


class FreezeMethod(MethodDefaults):
    name = "freeze"
    config: type[MethodSection] = FreezeConfig
    mergeable = True

    def apply(self, model: nn.Module, cfg: Any) -> nn.Module:
        model.requires_grad_(False)
        if cfg.trainable_layers:
            blocks = find_blocks(model)
            if cfg.trainable_layers > len(blocks):
                raise UserError(
                    f"method.trainable_layers: {cfg.trainable_layers} but the model has {len(blocks)} blocks"
                )
            for block in blocks[len(blocks) - cfg.trainable_layers :]:
                block.module.requires_grad_(True)
        named = named_parameters_with_type(model)
        for pattern in cfg.trainable_modules:
            hits = [p for n, kind, p in named if name_matches(n, kind, pattern)]
            if not hits:
                parts = sorted({part for n, _, _ in named for part in n.split(".") if not part.isdigit()})
                raise UserError(
                    f"method.trainable_modules: {pattern!r} matches no parameter; name parts: {', '.join(parts)}"
                )
            for param in hits:
                param.requires_grad_(True)
        for head in task_head(model):
            head.requires_grad_(True)
        model._tunesmith_trained_names = [n for n, p in model.named_parameters() if p.requires_grad]  # type: ignore[assignment]
        return model

    def save(self, model: nn.Module, out_dir: Path) -> None:
        names = set(getattr(model, "_tunesmith_trained_names", []))
        tensors = {n: p for n, p in model.named_parameters() if n in names}
        save_trained_tensors(out_dir, {"method": self.name, "base_model": _base_name(model)}, tensors)

    def load_trained(self, model: nn.Module, trained_dir: Path, name: str = DEFAULT_NAME) -> nn.Module:
        _, tensors = load_trained_tensors(trained_dir, self.name)
        bank_tensors(model, name, tensors, trained_dir)
        self.activate(model, name)
        return model

    def activate(self, model: nn.Module, name: str | None) -> None:
        activate_tensors(model, name)

    def merge(self, model: nn.Module) -> Any:
        return model  # the trained tensors already sit in the model


def _base_name(model: nn.Module) -> str | None:
    return getattr(model, "name_or_path", None)
