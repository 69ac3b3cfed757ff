"""Full fine-tuning: every weight learns; the result is a standard model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from torch import nn

from tunesmith.errors import UserError
from tunesmith.methods.base import DEFAULT_NAME, MethodDefaults
from tunesmith.sections import MethodSection


class FullConfig(MethodSection):
    """Every weight trains; nothing to set."""

    name: Literal["full"] = "full"
    switchable: ClassVar[bool] = False  # the base weights themselves change


class FullMethod(MethodDefaults):
    name = "full"
    config: type[MethodSection] = FullConfig
    mergeable = True

    def apply(self, model: nn.Module, cfg: Any) -> nn.Module:
        model.requires_grad_(True)
        return model

    def save(self, model: nn.Module, out_dir: Path) -> None:
        model.save_pretrained(out_dir)  # type: ignore[operator]

    def load_trained(self, model: nn.Module, trained_dir: Path, name: str = DEFAULT_NAME) -> nn.Module:
        if getattr(model, "_tunesmith_full_loaded", False):
            raise UserError(
                "full fine-tunes are whole models: load each one on its own, not on a shared base"
            )
        trained = type(model).from_pretrained(trained_dir, dtype=model.dtype)  # type: ignore[attr-defined]
        trained._tunesmith_full_loaded = True
        return trained  # type: ignore[no-any-return]

    def activate(self, model: nn.Module, name: str | None) -> None:
        if name is None:
            raise UserError("a full fine-tune has no separate base to switch back to")

    def merge(self, model: nn.Module) -> Any:
        return model
