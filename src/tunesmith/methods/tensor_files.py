"""Saved form of the methods tunesmith implements itself (freeze, adapter): the trained tensors in
safetensors plus a JSON file saying which method and settings produced them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from tunesmith.errors import UserError

METHOD_CONFIG = "method_config.json"
METHOD_WEIGHTS = "method_weights.safetensors"


def save_trained_tensors(
    out_dir: Path, settings: dict[str, Any], tensors: Mapping[str, torch.Tensor]
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(out_dir / METHOD_WEIGHTS))
    (out_dir / METHOD_CONFIG).write_text(json.dumps(settings, indent=2) + "\n")


def load_trained_tensors(trained_dir: Path, method: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    config_path = trained_dir / METHOD_CONFIG
    if not config_path.is_file():
        raise UserError(f"{trained_dir} holds no {METHOD_CONFIG}; it is not a saved {method} result")
    settings = json.loads(config_path.read_text())
    if settings.get("method") != method:
        raise UserError(f"{trained_dir} holds a {settings.get('method')} result, not {method}")
    return settings, load_file(str(trained_dir / METHOD_WEIGHTS))


BASE = "__base__"
BANK = "_tunesmith_tensor_bank"


def bank_tensors(
    model: torch.nn.Module, name: str, tensors: Mapping[str, torch.Tensor], source: Path
) -> None:
    """Keep a result's trained base-model tensors under `name` (and the originals once) so results can
    be switched by copying a few tensors in place instead of reloading the base."""
    params = dict(model.named_parameters())
    unknown = sorted(set(tensors) - set(params))
    if unknown:
        raise UserError(f"{source}: trained tensors {', '.join(unknown[:3])} do not exist in this base model")
    bank: dict[str, dict[str, torch.Tensor]] = model.__dict__.setdefault(BANK, {})
    if name in bank:
        raise UserError(f"a result named {name!r} is already loaded on this base model")
    base = bank.setdefault(BASE, {})
    for key in tensors:
        base.setdefault(key, params[key].detach().clone())
    bank[name] = {k: v.to(params[k].dtype) for k, v in tensors.items()}


def activate_tensors(model: torch.nn.Module, name: str | None) -> None:
    """Copy the banked tensors of `name` (None: the base's) into the model."""
    bank: dict[str, dict[str, torch.Tensor]] = model.__dict__.get(BANK, {})
    if not bank:
        return
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, original in bank[BASE].items():  # every swapped tensor back to base first
            params[key].copy_(original)
        for key, value in bank.get(BASE if name is None else name, {}).items():
            params[key].copy_(value)
