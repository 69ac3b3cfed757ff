"""The memorization probe: a model drilled on a few records completes them verbatim, but not held-out
records of the same shape, and the run summary says so."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import write_jsonl
from tunesmith import train
from tunesmith.data.records import TokenizedSample
from tunesmith.evaluate.memorization import build_probe


def test_probe_cuts_the_last_answer() -> None:
    ignore = -100
    # prompt 0-2, answer 3-4, prompt 5-6, answer 7-10 (the last trained span)
    labels = [ignore] * 3 + [13, 14] + [ignore] * 2 + [17, 18, 19, 20]
    sample = TokenizedSample(list(range(10, 21)), labels, "s")
    probe = build_probe(sample, prefix_share=0.5, max_tokens=32)
    assert probe is not None
    assert probe.prefix == list(range(10, 19)) and probe.target == [19, 20]
    short = build_probe(sample, prefix_share=0.25, max_tokens=1)
    assert short is not None and short.prefix == list(range(10, 18)) and short.target == [18]
    assert build_probe(TokenizedSample([1, 2, 3], [ignore, ignore, 3], "s"), 0.5, 8) is None


def codes(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    words = ["amber", "delta", "kilo", "lima", "oscar", "tango", "zulu", "nova", "echo", "vega"]
    return [
        {
            "instruction": f"Code for case {seed * 100 + i}?",
            "output": " ".join(rng.choice(words) for _ in range(8)),
        }
        for i in range(n)
    ]


def test_drilled_records_are_reproduced_verbatim(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    train_file = write_jsonl(tmp_path / "codes.jsonl", codes(4, seed=1))
    held_file = write_jsonl(tmp_path / "codes-eval.jsonl", codes(4, seed=2))
    config = make_config(
        method={"name": "full"},
        data={"train": str(train_file), "eval": str(held_file)},
        train={"max_steps": 80, "batch_size": 4, "lr": 1e-2, "schedule": "constant", "max_grad_norm": None},
        eval={"memorization": {"samples": 4, "prefix_share": 0.3}},
    )
    summary = train(config, quiet=True).summary
    memo = summary["memorization"]
    assert memo["train_samples"] == 4 and memo["heldout_samples"] == 4
    assert memo["train_verbatim_rate"] >= 0.75 and memo["heldout_verbatim_rate"] == 0.0
    assert memo["heldout_token_loss"] > memo["train_token_loss"] + 1.0
    assert memo["flagged"] is True and "learning the records" in memo["message"]


def test_probe_is_off_for_tasks_without_answers(make_config: Callable[..., dict[str, Any]]) -> None:
    summary = train(make_config(eval={"memorization": {"samples": 0}}), quiet=True).summary
    assert summary["memorization"] is None
