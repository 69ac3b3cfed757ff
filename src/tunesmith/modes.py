"""Two small helpers every layer uses: run a module in eval mode for a while (and put back the mode it
had, also on an error), and turn a mean loss into a perplexity (clamped: exp of a diverged loss is inf,
which JSON cannot hold). Torch only, so objectives, data, engine and readers may all import it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

PERPLEXITY_CLAMP = 50.0  # exp(50) ≈ 5e21: "diverged", yet a finite number


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def perplexity(mean_loss: float) -> float:
    return math.exp(min(mean_loss, PERPLEXITY_CLAMP))
