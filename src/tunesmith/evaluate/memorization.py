"""Memorization probe: does the model reproduce its *training* answers verbatim more than held-out ones?

For a seeded sample of training and of held-out samples, the last trained span (the answer) is cut in
two: the model sees everything before the cut and greedily continues for as many tokens as the rest
holds. A continuation equal to the rest, token for token, is verbatim. The per-token loss of the rest
given the prefix is measured too (teacher-forced). Extraction-style probing as in Carlini et al.,
"Extracting Training Data from Large Language Models" (2021) and "Quantifying Memorization Across Neural
Language Models" (2023): a high train rate with a low held-out rate means the model learned the records,
not the task.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import torch

from tunesmith.data.records import TokenizedSample
from tunesmith.engine.distributed import shared_map
from tunesmith.modes import eval_mode
from tunesmith.objectives.logprobs import IGNORE, TrainedTokenLM, sequence_logps

FLAG_RATE_GAP = 0.2  # train − held-out verbatim rate above this is flagged
FLAG_LOSS_GAP = 1.0  # held-out − train per-token loss (nats) above this is flagged


@dataclass
class Probe:
    prefix: list[int]
    target: list[int]


def build_probe(sample: TokenizedSample, prefix_share: float, max_tokens: int) -> Probe | None:
    """Cut the sample's last trained span; None when it has fewer than two trained tokens."""
    trained = [i for i in range(1, len(sample.labels)) if sample.labels[i] != IGNORE]
    if len(trained) < 2:
        return None
    start = trained[-1]
    while start - 1 in trained:
        start -= 1
    end = trained[-1] + 1
    cut = start + max(1, min(end - start - 1, math.ceil((end - start) * prefix_share)))
    return Probe(sample.input_ids[:cut], sample.input_ids[cut : min(end, cut + max_tokens)])


def pick(
    samples: list[TokenizedSample], count: int, seed: int, prefix_share: float, max_tokens: int
) -> list[Probe]:
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    probes = []
    for i in order:
        probe = build_probe(samples[i], prefix_share, max_tokens)
        if probe is not None:
            probes.append(probe)
        if len(probes) == count:
            break
    return probes


@torch.no_grad()
def continuations(model: Any, probes: list[Probe], pad_id: int, batch_size: int = 8) -> list[list[int]]:
    """Greedy continuation of each prefix, up to its target's length (left padding, batched); one that
    stops early (end of turn) comes back shorter and so is not verbatim. Shared between the ranks of a job."""
    return shared_map(lambda part: _continue(model, part, pad_id, batch_size), probes, model)


def _continue(model: Any, probes: list[Probe], pad_id: int, batch_size: int) -> list[list[int]]:
    device = next(model.parameters()).device
    outputs: list[list[int]] = []
    for start in range(0, len(probes), batch_size):
        chunk = probes[start : start + batch_size]
        width = max(len(p.prefix) for p in chunk)
        ids = torch.tensor([[pad_id] * (width - len(p.prefix)) + p.prefix for p in chunk], device=device)
        mask = torch.tensor(
            [[0] * (width - len(p.prefix)) + [1] * len(p.prefix) for p in chunk], device=device
        )
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max(len(p.target) for p in chunk),
            do_sample=False,
            pad_token_id=pad_id,
        )
        outputs += [out[row, width : width + len(p.target)].tolist() for row, p in enumerate(chunk)]
    return outputs


def measure(model: Any, probes: list[Probe], pad_id: int) -> tuple[float, float]:
    """(verbatim rate, mean per-token loss of the targets)."""
    verbatim = [c == p.target for c, p in zip(continuations(model, probes, pad_id), probes, strict=True)]
    teacher = [
        TokenizedSample(p.prefix + p.target, [IGNORE] * len(p.prefix) + p.target, "probe") for p in probes
    ]
    sums, counts = sequence_logps(TrainedTokenLM(model), teacher, batch_size=8, with_counts=True)
    return sum(verbatim) / len(probes), -sum(sums) / max(sum(counts), 1.0)


def memorization_probe(
    model: Any,
    train: list[TokenizedSample],
    held: list[TokenizedSample],
    pad_id: int,
    samples: int = 16,
    prefix_share: float = 0.5,
    max_tokens: int = 32,
    seed: int = 0,
) -> dict[str, Any] | None:
    """The summary's `memorization` section; None when either side has no probe-able sample."""
    train_probes = pick(train, samples, seed, prefix_share, max_tokens)
    held_probes = pick(held, samples, seed, prefix_share, max_tokens)
    if not train_probes or not held_probes:
        return None
    with eval_mode(model):
        train_rate, train_loss = measure(model, train_probes, pad_id)
        held_rate, held_loss = measure(model, held_probes, pad_id)
    flagged = train_rate - held_rate > FLAG_RATE_GAP or held_loss - train_loss > FLAG_LOSS_GAP
    return {
        "train_verbatim_rate": train_rate,
        "heldout_verbatim_rate": held_rate,
        "train_token_loss": train_loss,
        "heldout_token_loss": held_loss,
        "loss_gap": held_loss - train_loss,
        "train_samples": len(train_probes),
        "heldout_samples": len(held_probes),
        "flagged": flagged,
        "message": (
            f"memorization: the model completes {train_rate:.0%} of training answers verbatim vs "
            f"{held_rate:.0%} of held-out ones (per-token loss {train_loss:.3f} vs {held_loss:.3f})"
            + ("; it is learning the records rather than the task" if flagged else "")
        ),
    }
