"""AdamW and learning-rate schedules (transformers' schedule builders)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from torch.optim import AdamW, Optimizer
from torch.optim.lr_scheduler import LRScheduler

from tunesmith.sections import TrainConfig


def build_optimizer(
    model: nn.Module,
    cfg: TrainConfig,
    optimizer_class: type[Optimizer] = AdamW,
    lr_scale: Callable[[str], float] | None = None,
) -> Optimizer:
    """AdamW (or the method's AdamW variant, e.g. paged); 1-D tensors (biases, norms) get no weight decay;
    the method's `lr_scale` (LoRA+) gives some parameters a multiple of train.lr. Groups keep the order
    parameters first appear in, so the same config always builds the same optimizer."""
    groups: dict[tuple[bool, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            key = (param.ndim >= 2, lr_scale(name) if lr_scale is not None else 1.0)
            groups.setdefault(key, []).append(param)
    return optimizer_class(  # type: ignore[call-arg]
        [
            {"params": params, "weight_decay": cfg.weight_decay if decays else 0.0, "lr": cfg.lr * scale}
            for (decays, scale), params in sorted(groups.items(), key=lambda kv: (not kv[0][0], kv[0][1]))
        ],
        lr=cfg.lr,
        betas=cfg.adam_betas,
        eps=cfg.adam_eps,
    )


def build_scheduler(optimizer: Optimizer, cfg: TrainConfig, total_steps: int) -> LRScheduler:
    from transformers import get_scheduler

    name = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[cfg.schedule]
    return get_scheduler(name, optimizer, num_warmup_steps=cfg.warmup_steps, num_training_steps=total_steps)
