"""Regularisation knobs: label smoothing and NEFTune change training only, never the measured eval
loss; a carved classification eval split is stratified by label."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tunesmith import train
from tunesmith.data.sources import split_eval
from tunesmith.engine.neftune import attach_neftune
from tunesmith.objectives.causal_lm import causal_lm_loss_sum


def test_label_smoothing_matches_its_definition() -> None:
    torch.manual_seed(0)
    logits, targets, eps = torch.randn(5, 7), torch.randint(0, 7, (5,)), 0.1
    logp = torch.log_softmax(logits, -1)
    expected = -((1 - eps) * logp.gather(1, targets[:, None]).squeeze(1) + eps * logp.mean(-1)).sum()
    assert float(causal_lm_loss_sum(logits, targets, eps)) == pytest.approx(float(expected), rel=1e-6)


def test_neftune_noise_is_bounded_and_training_only(tiny_llama: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    ids = torch.randint(0, 100, (2, 9))
    clean = model.get_input_embeddings()(ids).detach()
    handle = attach_neftune(model, alpha=5.0)
    embeddings = model.get_input_embeddings()
    model.train()
    noisy = embeddings(ids).detach()
    bound = 5.0 / math.sqrt(9 * clean.shape[-1])
    assert 0 < float((noisy - clean).abs().max()) <= bound
    model.eval()
    assert torch.equal(embeddings(ids), clean)
    handle.remove()


def test_knobs_leave_eval_loss_alone(make_config: Callable[..., dict[str, Any]]) -> None:
    plain = train(make_config(output={"name": "plain"}), quiet=True)
    smoothed = train(
        make_config(output={"name": "smooth"}, train={"label_smoothing": 0.2, "neftune_alpha": 5.0}),
        quiet=True,
    )
    assert smoothed.summary["eval_loss_before"] == pytest.approx(plain.summary["eval_loss_before"], rel=1e-6)
    first = [next(m["loss"] for m in r.metrics if "loss" in m) for r in (plain, smoothed)]
    # same weights at step 1: the training loss differs only through the noise and the smoothing
    assert abs(first[1] - first[0]) > 1e-3


def test_stratified_split_keeps_class_shares() -> None:
    records = [("a", i) for i in range(80)] + [("b", i) for i in range(20)] + [("c", 0)]
    train_part, held = split_eval(records, 0.1, seed=3, stratum=lambda r: r[0])
    assert Counter(r[0] for r in held) == {"a": 8, "b": 2}  # the lone "c" stays in train
    assert len(train_part) + len(held) == len(records) and ("c", 0) in train_part
    plain_train, plain_held = split_eval(records, 0.1, seed=3)
    assert len(plain_held) == 10
