"""Batch → the model's scores at trained positions only.

The output projection is applied only where a label is trained, instead of at every position: for
instruction data most positions are prompt or padding, and the (T × vocab) logits are the largest
tensor of the step. The wrappers are nn.Modules so accelerate / DDP wrap them like any model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.distributed.tensor import DTensor

from tunesmith.data.packing import collate
from tunesmith.data.records import IGNORE, TokenizedSample
from tunesmith.objectives.causal_lm import causal_lm_loss_sum, linear_cross_entropy_sum


def gather_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) under LOGITS (..., V) for TARGETS (...) → (...), in float32."""
    return torch.log_softmax(logits.float(), -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def _plain_model(model: nn.Module) -> Any:
    """The transformers model inside a peft wrapper (LoRA layers stay injected in it)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _adds_virtual_tokens(model: nn.Module) -> bool:
    config = getattr(model, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


def _trained_positions(
    input_ids: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(targets at trained positions (N,), the (B, T-1) mask of them, the row of each (N,))."""
    targets = labels[:, 1:]  # (B, T-1): position t predicts token t+1
    trained = targets != IGNORE
    rows = torch.arange(input_ids.shape[0], device=input_ids.device).unsqueeze(1).expand_as(targets)[trained]
    return targets[trained], trained, rows


class TrainedTokenLM(nn.Module):
    """forward(batch tensors) → loss summed over trained tokens, for causal-LM training and evaluation."""

    def __init__(self, model: nn.Module, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing  # training only: eval loss stays the true cross-entropy
        config = _plain_model(model).config
        # models that post-process logits (soft-capping, scaling), and prefix / prompt tuning (peft adds
        # virtual tokens in its own forward), go through the full forward
        self.direct = not any(getattr(config, a, None) for a in ("final_logit_softcapping", "logit_scale"))
        self.direct = self.direct and not _adds_virtual_tokens(model)
        # FSDP gathers the head's weights in the model's forward: a sharded model goes through it
        self.direct = self.direct and not any(isinstance(p, DTensor) for p in model.parameters())

    def trained_hidden(
        self,
        input_ids: torch.Tensor,  # (B, T)
        labels: torch.Tensor,  # (B, T)
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(last hidden state before each trained token (N, H), targets (N,), rows (N,)); the output
        projection (and PPO's value head) read these states. Direct path only."""
        targets, trained, rows = _trained_positions(input_ids, labels)
        decoder = _plain_model(self.model).get_decoder()
        hidden = decoder(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
        ).last_hidden_state  # (B, T, H)
        return hidden[:, :-1][trained], targets, rows

    def output_projection(self, hidden: torch.Tensor) -> torch.Tensor:
        return _plain_model(self.model).get_output_embeddings()(hidden)  # type: ignore[no-any-return]

    def trained_logits(
        self,
        input_ids: torch.Tensor,  # (B, T)
        labels: torch.Tensor,  # (B, T)
        position_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits (N, V), targets (N,), row of each (N,)) at the N trained positions."""
        if self.direct:
            hidden, targets, rows = self.trained_hidden(input_ids, labels, attention_mask, position_ids)
            return self.output_projection(hidden), targets, rows  # (N, V)
        targets, trained, rows = _trained_positions(input_ids, labels)
        kwargs = {"position_ids": position_ids, "attention_mask": attention_mask, "use_cache": False}
        # prompt tuning returns V virtual positions first: keep the last T
        logits = self.model(input_ids=input_ids, **kwargs).logits[:, -input_ids.shape[1] : -1][trained]
        return logits, targets, rows

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **_: torch.Tensor,
    ) -> torch.Tensor:
        smoothing = self.label_smoothing if self.training else 0.0
        projection = _plain_model(self.model).get_output_embeddings() if self.direct else None
        if type(projection) is nn.Linear:  # a plain projection: the loss in chunks, no (N, V) logits
            hidden, targets, _rows = self.trained_hidden(input_ids, labels, attention_mask, position_ids)
            return linear_cross_entropy_sum(hidden, projection, targets, smoothing)
        logits, targets, _rows = self.trained_logits(input_ids, labels, position_ids, attention_mask)
        return causal_lm_loss_sum(logits, targets, smoothing)

    def answer_logps(
        self, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row: (Σ log p of its trained tokens, number of trained tokens), both (B,)."""
        logits, targets, rows = self.trained_logits(input_ids, labels, None, attention_mask)
        token_logps = gather_logprobs(logits, targets)  # (N,)
        sums = torch.zeros(input_ids.shape[0], device=logits.device).index_add(0, rows, token_logps)
        counts = torch.zeros(input_ids.shape[0], device=logits.device).index_add(
            0, rows, torch.ones_like(token_logps)
        )
        return sums, counts


@torch.no_grad()
def sequence_logps(
    lm: TrainedTokenLM, samples: list[TokenizedSample], batch_size: int, with_counts: bool = False
) -> Any:
    """Summed answer log-probs of every sample (and, with_counts, their answer lengths)."""
    was_training = lm.training
    lm.eval()
    device = next(lm.parameters()).device
    sums: list[float] = []
    counts: list[float] = []
    for start in range(0, len(samples), batch_size):
        batch = collate([[s] for s in samples[start : start + batch_size]], 0, packed=False)
        mask = batch.attention_mask.to(device) if batch.attention_mask is not None else None
        s, c = lm.answer_logps(batch.input_ids.to(device), batch.labels.to(device), mask)
        sums.extend(s.tolist())
        counts.extend(c.tolist())
    lm.train(was_training)
    return (sums, counts) if with_counts else sums
