"""Sampling settings of one generation, shared by chat, generate, serve and export verification.

Each row of a batch keeps its own settings and its own seeded generator, so requests with different
temperatures (or seeds) can share a forward pass and a seeded answer does not depend on what it was
batched with. The logits maths is transformers' own warpers, applied per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from tunesmith.errors import UserError


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    repetition_penalty: float = 1.0
    max_new_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)  # strings that end the answer (not included)

    def __post_init__(self) -> None:
        checks = [
            (self.temperature < 0, "temperature", "must be >= 0"),
            (not 0 < self.top_p <= 1, "top_p", "must be in (0, 1]"),
            (self.top_k < 0, "top_k", "must be >= 0"),
            (self.repetition_penalty <= 0, "repetition_penalty", "must be > 0"),
            (self.max_new_tokens < 1, "max_new_tokens", "must be >= 1"),
        ]
        for bad, name, rule in checks:
            if bad:
                raise UserError(f"{name} {getattr(self, name)} {rule}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


class RowSampler:
    """Picks one row's next token from its raw logits: warpers, then argmax or a seeded draw."""

    def __init__(self, sampling: Sampling, device: torch.device) -> None:
        from transformers import (
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        self.sampling = sampling
        self.warpers: list[Any] = []
        if sampling.repetition_penalty != 1.0:
            self.warpers.append(RepetitionPenaltyLogitsProcessor(sampling.repetition_penalty))
        if not sampling.greedy:
            self.warpers.append(TemperatureLogitsWarper(sampling.temperature))
            if sampling.top_k:
                self.warpers.append(TopKLogitsWarper(sampling.top_k))
            if sampling.top_p < 1.0:
                self.warpers.append(TopPLogitsWarper(sampling.top_p))
        self.generator: torch.Generator | None = None
        if not sampling.greedy:
            self.generator = torch.Generator(device=device)
            if sampling.seed is not None:
                self.generator.manual_seed(sampling.seed)
            else:
                self.generator.seed()

    def pick(self, seen_ids: torch.Tensor, logits: torch.Tensor) -> int:
        """seen_ids (1, T) the row's tokens so far (no padding); logits (1, V) raw → the next token id."""
        scores = logits
        for warper in self.warpers:
            scores = warper(seen_ids, scores)
        if self.sampling.greedy:
            return int(scores.argmax(-1))
        probs = torch.softmax(scores.float(), dim=-1)
        return int(torch.multinomial(probs, 1, generator=self.generator))
