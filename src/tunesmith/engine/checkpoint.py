"""Atomic, resumable checkpoints: trained weights + optimizer + scheduler + RNG + position.

A checkpoint is written under a temporary name and renamed when complete, so the newest `step-N`
folder is always whole; only the trainable tensors are stored (for LoRA, a few MB).
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

STEP_DIR = re.compile(r"^step-(\d+)$")


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad}


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


BEST_FILE = "best_trainable.safetensors"


def save_checkpoint(
    root: Path,
    step: int,
    model: nn.Module,
    optimizer: Any,
    scheduler: Any,
    extra: dict[str, Any],
    keep: int,
    best: dict[str, torch.Tensor] | None = None,
) -> Path:
    """An atomic checkpoint; BEST: early stopping's best trainable weights so far, kept beside it."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    tmp = root / f".tmp-step-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    if best:
        save_file({k: v.contiguous() for k, v in best.items()}, str(tmp / BEST_FILE))
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()},
        tmp / "training_state.pt",
    )
    (tmp / "state.json").write_text(json.dumps({"step": step, **extra}, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def load_best_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / BEST_FILE)) if (path / BEST_FILE).is_file() else {}


def load_checkpoint(path: Path, model: nn.Module, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    weights = load_file(str(path / "trainable.safetensors"))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)
    state = torch.load(path / "training_state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    info: dict[str, Any] = json.loads((path / "state.json").read_text())
    return info
