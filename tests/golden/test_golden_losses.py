"""Golden loss curves: short runs of every training route on the tiny Llama must reproduce the stored
per-step training and eval losses to 1e-6 (relative) on CPU, so a refactor that changes the maths is
caught. `TUNESMITH_UPDATE_GOLDEN=1 pytest tests/golden` rewrites the JSON files, deliberately."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_jsonl
from tests.tasks.test_classification import classification_config
from tests.tasks.test_preference import PAIRS, preference_config
from tests.tasks.test_rl import grpo_config
from tunesmith import train

GOLDEN = Path(__file__).parent


def sft(make_config: Callable[..., Any], tmp_path: Path, packing: bool) -> dict[str, Any]:
    return make_config(data={"packing": packing}, train={"max_steps": 4}, eval={"every_steps": 2})


def kto(make_config: Callable[..., Any], tmp_path: Path) -> dict[str, Any]:
    rows = [{"prompt": p["prompt"], "completion": p["chosen"] if i % 2 else p["rejected"], "label": bool(i % 2)}
            for i, p in enumerate(PAIRS)]
    config = preference_config(make_config, tmp_path, {"name": "dpo", "loss": "kto"})
    config["data"] = {"train": str(write_jsonl(tmp_path / "kto.jsonl", rows)), "eval_split": 0.2, "max_length": 128}
    config["train"]["max_steps"] = 4
    return config


def ppo(make_config: Callable[..., Any], tmp_path: Path) -> dict[str, Any]:
    config = grpo_config(make_config, tmp_path)
    task = config["task"]
    config["task"] = {"name": "ppo", "max_new_tokens": task["max_new_tokens"],
                      "reward_functions": task["reward_functions"], "kl_coef": 0.1, "kl_target": 1e-6,
                      "kl_horizon": 10, "ppo_epochs": 2}
    config["train"]["max_steps"] = 4
    return config


def shortened(config: dict[str, Any], steps: int = 4) -> dict[str, Any]:
    config["train"]["max_steps"] = steps
    return config


CASES: dict[str, Callable[[Callable[..., Any], Path], dict[str, Any]]] = {
    "sft_packed": lambda m, t: sft(m, t, True),
    "sft_unpacked": lambda m, t: sft(m, t, False),
    "lora_dropout": lambda m, t: m(method={"dropout": 0.1}, train={"max_steps": 4}),
    "adapter": lambda m, t: m(method={"name": "adapter", "reduction_factor": 4}, train={"max_steps": 4}),
    "classification": lambda m, t: shortened(classification_config(m, t)),
    "dpo_sigmoid": lambda m, t: shortened(preference_config(m, t, {"name": "dpo", "loss": "sigmoid"})),
    "kto": kto,
    "reward": lambda m, t: shortened(preference_config(m, t, {"name": "reward"})),
    "grpo": lambda m, t: grpo_config(m, t),
    "ppo": ppo,
}


def curves(metrics: list[dict[str, Any]]) -> dict[str, list[list[float]]]:
    return {key: [[m["step"], m[key]] for m in metrics if key in m] for key in ("loss", "eval_loss")}


@pytest.mark.parametrize("case", list(CASES))
def test_golden_loss_curve(case: str, make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    config = CASES[case](make_config, tmp_path)
    config["eval"] = {**config.get("eval", {}), "memorization": {"samples": 0}, "forgetting": False}
    got = curves(train(config, quiet=True).metrics)
    path = GOLDEN / f"{case}.json"
    if os.environ.get("TUNESMITH_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(got, indent=1) + "\n")
    expected = json.loads(path.read_text())
    assert got["loss"] and [s for s, _ in got["loss"]] == [s for s, _ in expected["loss"]]
    for key in ("loss", "eval_loss"):
        assert [s for s, _ in got[key]] == [s for s, _ in expected[key]], key
        assert [v for _, v in got[key]] == pytest.approx([v for _, v in expected[key]], rel=1e-6, abs=1e-7), key
