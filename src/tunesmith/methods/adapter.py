"""Bottleneck adapters (Houlsby et al., 2019; Pfeiffer et al., 2021), implemented here.

No maintained library supports them on transformers 5 (the `adapters` package pins transformers
4.57), and they are small: x + up(act(down(x))) after a sublayer, down: H → H / reduction_factor,
up initialised to zero so the model starts exactly as the base. Houlsby places one after attention
and one after the MLP of every block; Pfeiffer only after the MLP.

They attach with forward hooks on the located sublayers, so the base model's parameter names and
code stay untouched. Each place holds named adapters; one is active at a time (or none: the base).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field
from torch import nn

from tunesmith.errors import UserError
from tunesmith.methods.base import DEFAULT_NAME, MethodDefaults
from tunesmith.methods.tensor_files import (
    activate_tensors,
    bank_tensors,
    load_trained_tensors,
    save_trained_tensors,
)
from tunesmith.models.anatomy import (
    ATTENTION_OUTPUTS,
    MLP_OUTPUTS,
    find_blocks,
    find_sublayer,
    hidden_size_of,
    task_head,
)
from tunesmith.sections import MethodSection

if TYPE_CHECKING:
    from tunesmith.config import RunConfig

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}
SLOT = "tunesmith_adapters"  # attribute of the sublayer holding its AdapterSlot


class Bottleneck(nn.Module):
    def __init__(self, hidden_size: int, bottleneck_size: int, activation: str) -> None:
        super().__init__()
        self.down = nn.Linear(hidden_size, bottleneck_size)
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(bottleneck_size, hidden_size)
        nn.init.zeros_(self.up.weight)  # identity at init: training starts from the base model
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (B, T, H) → (B, T, H)
        return hidden + self.up(self.act(self.down(hidden)))


class AdapterSlot(nn.Module):
    """The named adapters at one place in the model; the active one transforms the sublayer output."""

    def __init__(self) -> None:
        super().__init__()
        self.adapters = nn.ModuleDict()
        self.active: str | None = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.active is None:
            return hidden
        return self.adapters[self.active](hidden)  # type: ignore[no-any-return]


def _after_sublayer(module: nn.Module, args: Any, output: Any) -> Any:
    slot: AdapterSlot = getattr(module, SLOT)
    if isinstance(output, tuple):  # attention modules return (hidden, weights, ...)
        return (slot(output[0]), *output[1:])
    return slot(output)


class AdapterConfig(MethodSection):
    name: Literal["adapter"] = "adapter"
    placement: Literal["houlsby", "pfeiffer"] = Field(
        "pfeiffer", description="houlsby: after attention and after the MLP; pfeiffer: after the MLP only"
    )
    reduction_factor: int = Field(16, gt=1, description="bottleneck size = hidden size / reduction_factor")
    activation: Literal["relu", "gelu", "silu", "tanh"] = Field("relu", description="bottleneck activation")


class AdapterMethod(MethodDefaults):
    name = "adapter"
    config: type[MethodSection] = AdapterConfig

    def check_model(self, cfg: RunConfig, model_config: Any) -> None:
        hidden = hidden_size_of(model_config, "method adapter")
        if hidden // cfg.method.reduction_factor < 1:
            raise UserError(
                f"method.reduction_factor: {cfg.method.reduction_factor} leaves no bottleneck for hidden size "
                f"{hidden} (at most {hidden})"
            )

    def apply(self, model: nn.Module, cfg: Any) -> nn.Module:
        model.requires_grad_(False)
        settings = {
            "method": self.name,
            "placement": cfg.placement,
            "reduction_factor": cfg.reduction_factor,
            "activation": cfg.activation,
        }
        add_adapters(model, settings, DEFAULT_NAME)
        for head in task_head(model):  # a new classification head learns along with the adapters
            head.requires_grad_(True)
        self.activate(model, DEFAULT_NAME)
        return model

    def save(self, model: nn.Module, out_dir: Path) -> None:
        name = _active_name(model)
        marker = f".{SLOT}.adapters.{name}."
        tensors = {
            n.replace(marker, "."): p
            for n, p in model.named_parameters()
            if marker in n or (p.requires_grad and SLOT not in n)  # + a trained task head
        }
        all_settings: dict[str, dict[str, Any]] = model.__dict__["_tunesmith_adapter_settings"]
        settings = {**all_settings[name], "base_model": getattr(model, "name_or_path", None)}
        save_trained_tensors(out_dir, settings, tensors)

    def load_trained(self, model: nn.Module, trained_dir: Path, name: str = DEFAULT_NAME) -> nn.Module:
        settings, tensors = load_trained_tensors(trained_dir, self.name)
        settings.pop("base_model", None)
        if name in getattr(model, "_tunesmith_adapter_settings", {}):
            raise UserError(f"an adapter named {name!r} is already loaded on this base model")
        add_adapters(model, settings, name)
        marker = f".{SLOT}.adapters.{name}."
        params = {n.replace(marker, "."): p for n, p in model.named_parameters() if marker in n}
        head = {k: v for k, v in tensors.items() if k not in params}
        if set(params) != set(tensors) - set(head):
            raise UserError(f"{trained_dir}: the saved adapter does not fit this base model's blocks")
        with torch.no_grad():
            for key, value in tensors.items():
                if key in params:
                    params[key].copy_(value)
        bank_tensors(model, name, head, trained_dir)
        self.activate(model, name)
        return model

    def activate(self, model: nn.Module, name: str | None) -> None:
        for module in model.modules():
            if isinstance(module, AdapterSlot):
                module.active = name
        activate_tensors(model, name)
        model._tunesmith_active_adapter = name  # type: ignore[assignment]


def add_adapters(model: nn.Module, settings: dict[str, Any], name: str) -> None:
    """Create adapter `name` at every place its placement asks for (slots and hooks on first use)."""
    hidden = hidden_size_of(model.config, "method adapter")  # type: ignore[union-attr]
    size = hidden // int(settings["reduction_factor"])
    places = (ATTENTION_OUTPUTS, MLP_OUTPUTS) if settings["placement"] == "houlsby" else (MLP_OUTPUTS,)
    for block in find_blocks(model):
        for candidates, what in zip(places, ("attention", "MLP")[-len(places) :], strict=True):
            _, sublayer = find_sublayer(block.module, candidates, f"{what} of block {block.index}")
            slot = getattr(sublayer, SLOT, None)
            if slot is None:
                slot = AdapterSlot()
                setattr(sublayer, SLOT, slot)
                sublayer.register_forward_hook(_after_sublayer)
            reference = next(sublayer.parameters())
            slot.adapters[name] = Bottleneck(hidden, size, settings["activation"]).to(
                device=reference.device, dtype=reference.dtype
            )
    model.__dict__.setdefault("_tunesmith_adapter_settings", {})[name] = settings


def _active_name(model: nn.Module) -> str:
    name = getattr(model, "_tunesmith_active_adapter", None)
    if name is None:
        raise UserError("no adapter is active on this model")
    return str(name)
