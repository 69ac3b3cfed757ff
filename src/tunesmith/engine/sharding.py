"""FSDP2 for a job of several processes (`distributed.strategy: fsdp`): PyTorch's `fully_shard` on each
transformer block and on the model that holds them, so each rank keeps 1/N of the weights, gradients and
optimizer moments, and gathers a block's weights only while it runs.

Applied with torch's own API rather than accelerate's FSDP plugin: accelerate turns that plugin on only for
GPU distributed types, while these calls run the same on gloo (CPU) and NCCL (CUDA). The rest of what a
sharded model changes is here too: the trained weights and optimizer state of a model that may be sharded,
gathered whole for a checkpoint and for the final save (every rank takes part, one tensor at a time; rank
0 keeps and writes them) and put back on resume. The
optimizer state is keyed by parameter name (torch.distributed.checkpoint's layout), so a checkpoint
resumes under either strategy and on any number of processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.distributed.tensor import DTensor

from tunesmith.errors import UserError
from tunesmith.sections import DistributedConfig


def root_model(model: nn.Module) -> nn.Module:
    """The transformers model inside MODEL (peft wraps it twice): FSDP's root, whose forward every use of
    the model (training, evaluation, generate) goes through."""
    get_base: Any = getattr(model, "get_base_model", None)
    return get_base() if get_base is not None else model  # type: ignore[no-any-return]


def blocks(model: nn.Module) -> list[nn.Module]:
    """The model's transformer blocks: what transformers lets checkpoint one by one."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


def shard_model(model: nn.Module, config: DistributedConfig, world: int) -> None:
    """fully_shard each block, then the transformers model (its embeddings, final norm and head); every
    trained weight must live inside it (prefix and prompt tuning keep theirs outside: refused earlier)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    root = root_model(model)
    inside = {id(p) for p in root.parameters()}
    outside = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in inside]
    if outside:
        raise UserError(
            f"distributed.strategy fsdp: the trained weight {outside[0]} lives outside the model's blocks; "
            "use distributed.strategy: ddp"
        )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if config.fsdp_sharding == "hybrid":
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        if world % per_node:
            raise UserError(f"distributed.fsdp_sharding hybrid: {world} processes are not whole nodes of {per_node}")
        mesh = init_device_mesh(device, (world // per_node, per_node), mesh_dim_names=("replicate", "shard"))
    else:
        mesh = init_device_mesh(device, (world,))
    for block in blocks(root):
        fully_shard(block, mesh=mesh)
    fully_shard(root, mesh=mesh)
    # transformers' own mark of an FSDP2 model: generate then keeps every rank stepping until all are done
    # (greedy answers that differ by a token between ranks would otherwise leave one waiting)
    root._is_fsdp_managed_module = True  # type: ignore[assignment]


def is_sharded(model: nn.Module) -> bool:
    return any(isinstance(p, DTensor) for p in model.parameters())


def held_bytes(model: nn.Module) -> tuple[int, int]:
    """(bytes of weights this rank holds, bytes of the whole model's weights)."""
    held = whole = 0
    for param in model.parameters():
        local = param.to_local() if isinstance(param, DTensor) else param
        held += local.numel() * param.element_size()
        whole += param.numel() * param.element_size()
    return held, whole


def whole_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """A sharded tensor gathered from every rank (a collective: every rank calls it, in the same order)."""
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


@contextmanager
def gathered(model: nn.Module, trained_only: bool, keep: bool) -> Iterator[None]:
    """The model as a method's save sees it in one process, for the block: `state_dict()` and
    `named_parameters()` give whole tensors on rank 0 (what save_pretrained, peft's included, and
    tunesmith's own methods write). TRAINED_ONLY (an adapter-type method, which never saves the base):
    only the trained weights are gathered, and the buffers; else the whole model. One tensor at a time
    goes through each device; only the rank that KEEPs (rank 0) holds the result, on CPU. Every rank must
    enter it; a no-op for a model that is not sharded."""
    if not is_sharded(model):
        yield
        return
    if trained_only:
        whole = trainable_state(model, keep)
        whole.update({n: b.detach().cpu() for n, b in model.named_buffers(remove_duplicate=False)})
    else:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        whole = dict(get_model_state_dict(model, options=options))  # type: ignore[arg-type]
    first: dict[int, str] = {}
    params = []
    for name, param in model.named_parameters(remove_duplicate=False):  # tied weights stay one tensor,
        shared = first.setdefault(id(param), name)  # which save_pretrained writes once
        if shared != name and shared in whole and name in whole:
            whole[name] = whole[shared]
        if name in whole and shared == name:
            params.append((name, nn.Parameter(whole[name], requires_grad=param.requires_grad)))
    model.state_dict = lambda *args, **kwargs: whole  # type: ignore[method-assign,assignment]
    model.named_parameters = lambda *args, **kwargs: iter(params)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        del model.state_dict, model.named_parameters


def trainable_state(model: nn.Module, keep: bool = True) -> dict[str, torch.Tensor]:
    """The trained weights, whole, on CPU; empty where KEEP is false (a rank that only helps to gather:
    every rank must call it when the model is sharded)."""
    found = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            whole = whole_tensor(param.detach())
            if keep:
                found[name] = whole.contiguous().cpu()
    return found


def load_trainable(model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Put whole trained weights back (each rank keeps its shard of them when the model is sharded)."""
    if is_sharded(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        options = StateDictOptions(full_state_dict=True, strict=False)
        set_model_state_dict(model, dict(weights), options=options)  # type: ignore[arg-type]
        return
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor.to(params[name].device))


def _inner(optimizer: Any) -> torch.optim.Optimizer:
    return getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper holds the real one


def _names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The name of each parameter the optimizer holds, in its state_dict's index order."""
    name_of = {id(p): n for n, p in model.named_parameters()}
    return [name_of[id(p)] for group in optimizer.param_groups for p in group["params"]]


def optimizer_state(model: nn.Module, optimizer: Any) -> dict[str, Any]:
    """The optimizer's state keyed by parameter name, whole (when sharded: a collective, and only rank 0
    receives it; the others get an empty dict)."""
    inner = _inner(optimizer)
    if is_sharded(model) and inner.state:  # (torch's helper takes a step to make a state that is not there)
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return dict(get_optimizer_state_dict(model, inner, options=options))
    names, saved = _names(model, inner), inner.state_dict()
    return {
        "state": {names[index]: value for index, value in saved["state"].items()},
        "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in saved["param_groups"]],
    }


def load_optimizer_state(model: nn.Module, optimizer: Any, saved: dict[str, Any]) -> None:
    """Restore OPTIMIZER from `optimizer_state`'s layout (or an older checkpoint's index-keyed one)."""
    inner = _inner(optimizer)
    names = _names(model, inner)
    if all(isinstance(p, int) for g in saved["param_groups"] for p in g["params"]):  # an older checkpoint's
        saved = {
            "state": {names[int(i)]: value for i, value in saved["state"].items()},
            "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in saved["param_groups"]],
        }
    if is_sharded(model) and saved["state"]:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(model, inner, saved, options=StateDictOptions(full_state_dict=True))
        return
    index = {name: i for i, name in enumerate(names)}
    inner.load_state_dict({
        "state": {index[name]: value for name, value in saved["state"].items()},
        "param_groups": [{**g, "params": [index[n] for n in g["params"]]} for g in saved["param_groups"]],
    })


def trained(model: nn.Module, optimizer: Any, keep: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """What a checkpoint keeps of the training: (trained weights, optimizer state), whole (the weights
    empty where KEEP is false: a rank that does not write)."""
    return trainable_state(model, keep), optimizer_state(model, optimizer)
