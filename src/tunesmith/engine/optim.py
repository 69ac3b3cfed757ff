"""AdamW and learning-rate schedules (transformers' schedule builders)."""

from __future__ import annotations

from torch import nn
from torch.optim import AdamW, Optimizer
from torch.optim.lr_scheduler import LRScheduler

from tunesmith.config import TrainConfig


def build_optimizer(
    model: nn.Module, cfg: TrainConfig, optimizer_class: type[Optimizer] = AdamW
) -> Optimizer:
    """AdamW (or the method's AdamW variant, e.g. paged); 1-D tensors (biases, norms) get no weight decay."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return optimizer_class(  # type: ignore[call-arg]
        [g for g in groups if g["params"]], lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps
    )


def build_scheduler(optimizer: Optimizer, cfg: TrainConfig, total_steps: int) -> LRScheduler:
    from transformers import get_scheduler

    name = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[cfg.schedule]
    return get_scheduler(name, optimizer, num_warmup_steps=cfg.warmup_steps, num_training_steps=total_steps)
