"""The Method protocol: checks before loading, apply to a model, save what was trained, reload, switch
between several trained results on one base, and merge for export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from tunesmith.sections import MethodSection

if TYPE_CHECKING:
    from tunesmith.config import RunConfig

DEFAULT_NAME = "default"


class Method(Protocol):
    name: str
    config: type[MethodSection]  # its `method:` section (each method's own keys)
    mergeable: bool  # can the training be folded into the base weights?
    shardable: bool  # can FSDP shard it (its trained weights live in the model's blocks, the base is not quantized)?

    def check_environment(self, cfg: RunConfig) -> None:
        """Fail before anything is loaded when this machine cannot run the method (e.g. no CUDA)."""
        ...

    def check_model(self, cfg: RunConfig, model_config: Any) -> None:
        """Fail before the weights load when the method's keys do not fit the model's shape."""
        ...

    def load_kwargs(self, cfg: Any) -> dict[str, Any]:
        """Extra `from_pretrained` arguments (quantization for qlora)."""
        ...

    def optimizer_class(self, cfg: Any) -> type[torch.optim.Optimizer]: ...

    def lr_scale(self, cfg: Any) -> Callable[[str], float] | None:
        """A learning-rate multiplier per trainable parameter name (LoRA+), or None for one rate."""
        ...

    def apply(self, model: nn.Module, cfg: Any) -> nn.Module:
        """Make the parameters this method trains trainable (and only those)."""
        ...

    def save(self, model: nn.Module, out_dir: Path) -> None:
        """Write only what was trained, in its ecosystem format (peft folder, HF folder, safetensors)."""
        ...

    def load_trained(self, model: nn.Module, trained_dir: Path, name: str = DEFAULT_NAME) -> nn.Module:
        """Base model (or one already carrying other results of this method) + a saved result."""
        ...

    def activate(self, model: nn.Module, name: str | None) -> None:
        """Switch to the result loaded under `name`; None runs the plain base model."""
        ...

    def merge(self, model: nn.Module) -> Any:
        """A plain transformers model with the training folded into its weights (mergeable only)."""
        ...


class MethodDefaults:
    """No-op hooks most methods share."""

    name = ""
    config: type[MethodSection] = MethodSection
    mergeable = False
    shardable = True

    def check_environment(self, cfg: RunConfig) -> None:
        return None

    def check_model(self, cfg: RunConfig, model_config: Any) -> None:
        return None

    def load_kwargs(self, cfg: Any) -> dict[str, Any]:
        return {}

    def optimizer_class(self, cfg: Any) -> type[torch.optim.Optimizer]:
        return torch.optim.AdamW

    def lr_scale(self, cfg: Any) -> Callable[[str], float] | None:
        return None

    def merge(self, model: nn.Module) -> Any:
        raise NotImplementedError(f"method {self.name} cannot be merged into the base weights")


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; tied weights are counted once."""
    trainable = total = 0
    for param in model.parameters():  # parameters() yields each shared tensor once
        numel = _stored_numel(param)
        total += numel
        if param.requires_grad:
            trainable += numel
    return trainable, total


def _stored_numel(param: torch.Tensor) -> int:
    # bitsandbytes packs two 4-bit values per byte: report the logical size
    shape = getattr(param, "quant_state", None)
    return int(shape.shape.numel()) if shape is not None else param.numel()


def trainable_state_bytes(model: nn.Module) -> int:
    """Memory of what training adds per trainable weight: the weight, its gradient and AdamW's two
    moment estimates (kept in the weight's dtype by torch's AdamW)."""
    return sum(4 * p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
