"""`train.compile: true`: the training objective's forward through torch.compile, eager when that fails.

torch.compile fails late (at the first call, when it traces and builds kernels: a missing C++ compiler,
an unsupported op in a model's code, a backend bug), so the compiled forward is tried on each call until
it has worked once; the first failure prints one warning line and the run continues eagerly. The
module's parameters and state-dict keys stay as they are: checkpoints of compiled and eager runs are
interchangeable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def compile_forward(module: nn.Module, warn: Callable[[str], None]) -> None:
    """Replace MODULE.forward by a compiled one that falls back to the eager forward on failure."""
    eager = module.forward
    state: dict[str, Any] = {"compiled": None, "failed": False}

    def forward(*args: Any, **kwargs: Any) -> Any:
        if not state["failed"]:
            try:
                if state["compiled"] is None:
                    state["compiled"] = torch.compile(eager, dynamic=True)
                return state["compiled"](*args, **kwargs)
            except Exception as exc:  # any backend failure: the eager forward computes the same thing
                state["failed"] = True
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                warn(f"warning: train.compile: torch.compile failed ({first[:200]}); training continues uncompiled")
        return eager(*args, **kwargs)

    module.forward = forward  # type: ignore[method-assign]
