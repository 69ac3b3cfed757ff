"""Next-token cross-entropy, summed over trained tokens.

The loss is a *sum*; the training loop divides by the number of trained tokens across every
micro-batch of an optimizer step, so gradient accumulation equals the larger batch exactly
(a per-micro-batch mean would weight tokens of short micro-batches more).

`linear_cross_entropy_sum` is the same loss taken from the hidden states through the output
projection, a chunk of tokens at a time, with the gradient computed in the forward pass (the approach
of Liger's fused linear cross-entropy; written here because Liger's kernels are Triton, CUDA-only).
No tokens × vocabulary tensor outlives its chunk, forward or backward: on SmolLM2 (vocabulary 49k) a
4k-token step otherwise holds ~2.5 GB of logits, their fp32 copy, the log-softmax and its gradient.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

CHUNK_TOKENS = 1024  # rows of logits alive at once: 1024 × 49k × (fp32 + bf16) ≈ 300 MB on SmolLM2


def causal_lm_loss_sum(
    logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Sum of -log p(target) over the given positions.

    logits: (N, V) scores at the trained positions only; targets: (N,) the next tokens.
    label_smoothing ε mixes the one-hot target with a uniform one, (1−ε)·y + ε/V (Szegedy et al. 2016,
    "Rethinking the Inception Architecture", §7): a regulariser against over-confident memorisation.
    Returns a scalar (fp32).
    """
    return F.cross_entropy(logits.float(), targets, reduction="sum", label_smoothing=label_smoothing)


def _compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    """The dtype autocast would run the projection in (or the tensor's own outside autocast)."""
    device = tensor.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else tensor.dtype


class _LinearCrossEntropy(torch.autograd.Function):
    """Σ CE(hidden @ weightᵀ + bias, targets), chunked; gradients are made in the forward and kept."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: torch.Tensor,  # (N, H)
        weight: torch.Tensor,  # (V, H)
        bias: torch.Tensor | None,  # (V,)
        targets: torch.Tensor,  # (N,)
        label_smoothing: float,
        chunk: int,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        needs = ctx.needs_input_grad
        w = weight.to(dtype)
        b = bias.to(dtype) if bias is not None else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if needs[0] else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if needs[1] else None
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if bias is not None and needs[2] else None
        vocab = weight.shape[0]
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start : start + chunk].to(dtype)
            t = targets[start : start + chunk]
            logits = F.linear(h, w, b).float()  # (C, V): the only one alive
            total += F.cross_entropy(logits, t, reduction="sum", label_smoothing=label_smoothing)
            if grad_hidden is None and grad_weight is None and grad_bias is None:
                continue
            grad = torch.softmax(logits, -1)  # d loss / d logits = p − ((1−ε)·onehot + ε/V)
            del logits
            if label_smoothing:
                grad -= label_smoothing / vocab
            grad[torch.arange(t.shape[0], device=t.device), t] -= 1.0 - label_smoothing
            if grad_bias is not None:
                grad_bias += grad.sum(0)
            g = grad.to(dtype)
            del grad
            if grad_hidden is not None:
                grad_hidden[start : start + chunk] = (g @ w).to(hidden.dtype)
            if grad_weight is not None:
                grad_weight += (g.t() @ h).float()
        ctx.save_for_backward(*(g for g in (grad_hidden, grad_weight, grad_bias) if g is not None))
        ctx.kept = (grad_hidden is not None, grad_weight is not None, grad_bias is not None)
        ctx.dtypes = (hidden.dtype, weight.dtype, bias.dtype if bias is not None else None)
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        saved = iter(ctx.saved_tensors)
        grads = [
            (next(saved) * grad_output).to(dtype) if kept else None
            for kept, dtype in zip(ctx.kept, ctx.dtypes, strict=True)
        ]
        return (*grads, None, None, None, None)


def linear_cross_entropy_sum(
    hidden: torch.Tensor,
    projection: torch.nn.Linear,
    targets: torch.Tensor,
    label_smoothing: float = 0.0,
    chunk: int = CHUNK_TOKENS,
) -> torch.Tensor:
    """`causal_lm_loss_sum(projection(hidden), targets)` without the (N, V) logits: HIDDEN (N, H) are the
    states before the N trained tokens. Matches the plain path in value and gradients (tests)."""
    dtype = _compute_dtype(hidden)
    with torch.autocast(hidden.device.type, enabled=False):
        return _LinearCrossEntropy.apply(  # type: ignore[no-any-return]
            hidden, projection.weight, projection.bias, targets, label_smoothing, chunk, dtype
        )
