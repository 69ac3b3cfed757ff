"""GRPO on the real SmolLM2-135M-Instruct with a rule-based reward (answers of at most six words): the
mean reward of greedy completions on held-out prompts rises above the starting policy's, and the KL to
the reference is reported. Slow (under a minute on 2 cores); runs in CI too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_jsonl
from tunesmith import train


@pytest.mark.slow
def test_grpo_raises_mean_reward_on_smollm2(tmp_path: Path) -> None:
    prompts = [{"prompt": f"Tell me about topic number {i}."} for i in range(24)]
    config = {
        "model": {"path": "smollm2-135m-instruct"},
        "task": {
            "name": "grpo",
            "group_size": 4,
            "max_new_tokens": 24,
            "beta": 0.04,
            "reward_functions": [
                {"function": "tunesmith.rewards:length_between", "kwargs": {"low": 1, "high": 6}}
            ],
        },
        "data": {
            "train": str(write_jsonl(tmp_path / "p.jsonl", prompts[:20])),
            "eval": str(write_jsonl(tmp_path / "e.jsonl", prompts[20:])),
        },
        "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
        "train": {"max_steps": 6, "batch_size": 4, "lr": 2e-3, "seed": 0},
        "eval": {"num_samples": 0},
        "output": {"dir": str(tmp_path), "name": "grpo"},
    }
    summary = train(config, quiet=True).summary
    assert summary["mean_reward_after"] > summary["mean_reward_before"] + 0.3
    assert summary["kl_before"] == 0.0 and summary["kl_after"] > 0.0


@pytest.mark.slow
def test_ppo_raises_mean_reward_on_smollm2(tmp_path: Path) -> None:
    prompts = [{"prompt": f"Tell me about topic number {i}."} for i in range(24)]
    config = {
        "model": {"path": "smollm2-135m-instruct"},
        "task": {
            "name": "ppo",
            "max_new_tokens": 24,
            "kl_coef": 0.05,
            "kl_target": 0.5,
            "reward_functions": [
                {"function": "tunesmith.rewards:length_between", "kwargs": {"low": 1, "high": 6}}
            ],
        },
        "data": {
            "train": str(write_jsonl(tmp_path / "p.jsonl", prompts[:20])),
            "eval": str(write_jsonl(tmp_path / "e.jsonl", prompts[20:])),
        },
        "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
        "train": {"max_steps": 10, "batch_size": 8, "lr": 2e-3, "seed": 0},
        "eval": {"num_samples": 0},
        "output": {"dir": str(tmp_path), "name": "ppo"},
    }
    summary = train(config, quiet=True).summary
    assert summary["mean_reward_after"] > summary["mean_reward_before"] + 0.3
    assert summary["kl_before"] == 0.0 and summary["kl_after"] > 0.0
