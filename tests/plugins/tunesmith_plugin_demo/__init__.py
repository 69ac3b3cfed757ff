"""A third-party tunesmith plugin, written as a package outside tunesmith would be: it imports tunesmith's
public seams only and registers through entry points (see `ENTRY_POINTS`), with no edit to tunesmith.

- method `norm_tune`: trains the parameters whose name contains one of `method.patterns` (its own key);
  the result is a safetensors file of those tensors;
- objective `squared_hinge` (a preference loss of the log-ratio margin h): max(0, 1 − β·h)²;
- reward `shouting`: the share of upper-case letters in a completion;
- format `qa`: {"q": ..., "a": ...} records as one user and one assistant turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from safetensors.torch import load_file, save_file
from torch import nn

from tunesmith.data.formats.base import FieldReader, build_conversation
from tunesmith.data.records import Message, Record
from tunesmith.methods.base import DEFAULT_NAME, MethodDefaults
from tunesmith.objectives.plugins import Objective
from tunesmith.sections import MethodSection

WEIGHTS = "norm_tune.safetensors"


class NormTuneConfig(MethodSection):
    name: Literal["norm_tune"] = "norm_tune"
    switchable: ClassVar[bool] = False
    patterns: list[str] = Field(default_factory=lambda: ["norm"], description="train parameters whose name has one")


class NormTuneMethod(MethodDefaults):
    name = "norm_tune"
    config: type[MethodSection] = NormTuneConfig
    mergeable = True

    def apply(self, model: nn.Module, cfg: Any) -> nn.Module:
        for name, param in model.named_parameters():
            param.requires_grad_(any(p in name for p in cfg.patterns))
        return model

    def save(self, model: nn.Module, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        trained = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(trained, str(out_dir / WEIGHTS))

    def load_trained(self, model: nn.Module, trained_dir: Path, name: str = DEFAULT_NAME) -> nn.Module:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for key, tensor in load_file(str(trained_dir / WEIGHTS)).items():
                params[key].copy_(tensor)
        return model

    def activate(self, model: nn.Module, name: str | None) -> None:
        return None

    def merge(self, model: nn.Module) -> Any:
        return model


squared_hinge = Objective(kind="preference", function=lambda h, beta, eps: torch.relu(1 - beta * h) ** 2)


def shouting(prompt: str, completion: str) -> float:
    letters = [c for c in completion if c.isalpha()]
    return sum(c.isupper() for c in letters) / len(letters) if letters else 0.0


class QaFormat:
    name = "qa"
    fields = ("q", "a")

    def to_record(self, row: dict[str, Any], where: str, columns: dict[str, str]) -> Record:
        read = FieldReader(row, where, columns, self.name)
        return build_conversation([Message("user", read.text("q")), Message("assistant", read.text("a"))], where)


ENTRY_POINTS = {
    "tunesmith.methods": {"norm_tune": "tunesmith_plugin_demo:NormTuneMethod"},
    "tunesmith.objectives": {"squared_hinge": "tunesmith_plugin_demo:squared_hinge"},
    "tunesmith.rewards": {"shouting": "tunesmith_plugin_demo:shouting"},
    "tunesmith.formats": {"qa": "tunesmith_plugin_demo:QaFormat"},
}
