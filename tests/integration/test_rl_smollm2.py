"""GRPO and PPO on the real SmolLM2-135M-Instruct with a rule-based reward (answers of at most six
words): the mean reward of greedy completions on held-out prompts rises above the starting policy's,
and the KL to the reference is reported. Slow (about a minute each on 2 cores); runs in CI too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_jsonl
from tunesmith import train

SHORT_ANSWERS = [{"function": "tunesmith.rewards:length_between", "kwargs": {"low": 1, "high": 6}}]
TASKS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "grpo": ({"group_size": 4, "beta": 0.04}, {"max_steps": 6, "batch_size": 4}),
    "ppo": ({"kl_coef": 0.05, "kl_target": 0.5}, {"max_steps": 10, "batch_size": 8}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TASKS))
def test_rl_raises_mean_reward_on_smollm2(name: str, tmp_path: Path) -> None:
    options, train_cfg = TASKS[name]
    prompts = [{"prompt": f"Tell me about topic number {i}."} for i in range(24)]
    config = {
        "model": {"path": "smollm2-135m-instruct"},
        "task": {"name": name, "max_new_tokens": 24, "reward_functions": SHORT_ANSWERS, **options},
        "data": {
            "train": str(write_jsonl(tmp_path / "p.jsonl", prompts[:20])),
            "eval": str(write_jsonl(tmp_path / "e.jsonl", prompts[20:])),
        },
        "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
        "train": {"lr": 2e-3, "seed": 0, **train_cfg},
        "eval": {"num_samples": 0},
        "output": {"dir": str(tmp_path), "name": name},
    }
    summary = train(config, quiet=True).summary
    assert summary["mean_reward_after"] > summary["mean_reward_before"] + 0.3
    assert summary["kl_before"] == 0.0 and summary["kl_after"] > 0.0
