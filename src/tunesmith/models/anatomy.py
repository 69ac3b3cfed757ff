"""Finding the parts of a transformer the methods act on: its blocks, their attention and MLP
sublayers, and the weight layers that LoRA-type methods can wrap.

transformers has no common API for "the list of blocks" across architectures, so this looks for the
structure every decoder and encoder shares: one ModuleList of identical blocks, as deep as the model's
layer count. Sublayers are found by the names the major families use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from tunesmith.errors import UserError

# where each family keeps the sublayer output an adapter follows; first match wins.
# BERT-style post-LN blocks: the dense projection before the residual add + LayerNorm.
ATTENTION_OUTPUTS = ("attention.output.dense", "self_attn", "attn", "self_attention", "attention")
MLP_OUTPUTS = ("mlp", "feed_forward", "ffn", "output.dense")


@dataclass(frozen=True)
class Block:
    name: str  # e.g. model.layers.3
    index: int
    module: nn.Module


def find_blocks(model: nn.Module) -> list[Block]:
    """The transformer blocks in order: the longest ModuleList whose children share one class."""
    best_name, best = "", None
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(child) for child in module}) != 1:
            continue
        if best is None or len(module) > len(best):
            best_name, best = name, module
    if best is None:
        raise UserError(f"cannot locate the transformer blocks of {type(model).__name__}")
    return [Block(f"{best_name}.{i}", i, child) for i, child in enumerate(best)]


def find_sublayer(block: nn.Module, candidates: tuple[str, ...], what: str) -> tuple[str, nn.Module]:
    for path in candidates:
        module: nn.Module | None = block
        for part in path.split("."):
            module = getattr(module, part, None) if module is not None else None
        if isinstance(module, nn.Module):
            return path, module
    children = ", ".join(name for name, _ in block.named_children())
    raise UserError(f"cannot locate the {what} of {type(block).__name__} (its parts: {children})")


TASK_HEADS = ("classifier", "score")  # transformers' names for sequence-classification heads


def task_head(model: nn.Module) -> list[nn.Module]:
    """The freshly initialised task head of a classification model: it must always train."""
    if not type(model).__name__.endswith(("ForSequenceClassification", "ForTokenClassification")):
        return []
    return [m for name in TASK_HEADS if isinstance(m := getattr(model, name, None), nn.Module)]


def weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every layer with a 2-D weight that LoRA/IA3 can wrap (Linear, GPT-2's Conv1D), by full name."""
    from transformers.pytorch_utils import Conv1D

    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear | Conv1D)}


def layer_dims(module: nn.Module) -> tuple[int, int]:
    """(in_features, out_features); Conv1D stores its weight transposed."""
    from transformers.pytorch_utils import Conv1D

    weight: Any = module.weight
    rows, cols = weight.shape
    return (int(rows), int(cols)) if isinstance(module, Conv1D) else (int(cols), int(rows))


def matches(name: str, pattern: str) -> bool:
    """peft's rule for a target name: the full name, or its last dotted parts."""
    return name == pattern or name.endswith("." + pattern)


def check_targets(model: nn.Module, targets: list[str], key: str) -> None:
    """Each target name must match at least one module; otherwise list the candidates."""
    names = [name for name, _ in model.named_modules()]
    missing = [t for t in targets if not any(matches(n, t) for n in names)]
    if missing:
        candidates = sorted({n.rsplit(".", 1)[-1] for n in weight_layers(model)})
        raise UserError(
            f"{key}: {', '.join(missing)} match no module of {type(model).__name__}; "
            f"candidates: {', '.join(candidates)}"
        )


def hidden_size_of(model_config: Any, user: str) -> int:
    """The width of the residual stream, whatever the family calls it; `user` names who asks."""
    for key in ("hidden_size", "n_embd", "d_model", "dim"):
        value = getattr(model_config, key, None)
        if isinstance(value, int):
            return value
    raise UserError(f"cannot read the hidden size of {type(model_config).__name__} for {user}")
