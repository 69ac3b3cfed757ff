"""On the real SmolLM2-135M-Instruct with the bank preference set (examples/preferences): DPO raises
held-out preference accuracy above its start, and a reward model reaches held-out pairwise accuracy
clearly above 50%. Slow (about two minutes on 2 cores); runs in CI too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_jsonl
from tunesmith import train

PREFS = Path(__file__).resolve().parents[2] / "examples" / "preferences"


def reduced(tmp_path: Path) -> list[str]:
    import json

    train_rows = [json.loads(line) for line in (PREFS / "train.jsonl").read_text().splitlines()[:64]]
    held = [json.loads(line) for line in (PREFS / "eval.jsonl").read_text().splitlines()[:20]]
    return [
        f"data.train={write_jsonl(tmp_path / 'train.jsonl', train_rows)}",
        f"data.eval={write_jsonl(tmp_path / 'eval.jsonl', held)}",
        f"output.dir={tmp_path}",
    ]


@pytest.mark.slow
def test_dpo_on_smollm2_raises_preference_accuracy(tmp_path: Path) -> None:
    summary = train(PREFS / "dpo.yaml", [*reduced(tmp_path), "train.max_steps=6"], quiet=True).summary
    assert summary["eval_pref_accuracy_after"] > summary["eval_pref_accuracy_before"]
    assert summary["eval_pref_accuracy_after"] >= 0.9
    assert summary["eval_reward_margin_after"] > 0


@pytest.mark.slow
def test_reward_model_on_smollm2_ranks_held_out_pairs(tmp_path: Path) -> None:
    summary = train(PREFS / "reward.yaml", [*reduced(tmp_path), "train.max_steps=10"], quiet=True).summary
    assert summary["eval_pair_accuracy_after"] >= 0.8  # clearly above chance (0.5)
