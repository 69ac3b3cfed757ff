"""GRPO through `train()`: the rollout step, reward sources, the summary's reward / KL fields, and
one-line errors for bad reward sources."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_jsonl
from tunesmith import train
from tunesmith.errors import UserError
from tunesmith.rewards import RewardSource, contains, ends_with, length_between

PROMPTS = [{"prompt": f"Name thing number {i}."} for i in range(12)]


def grpo_config(make_config: Callable[..., dict[str, Any]], tmp_path: Path, **task: Any) -> dict[str, Any]:
    rewards = task.pop(
        "reward_functions",
        [{"function": "tunesmith.rewards:length_between", "kwargs": {"low": 1, "high": 3}}],
    )
    return make_config(
        task={"name": "grpo", "group_size": 3, "max_new_tokens": 6, "reward_functions": rewards, **task},
        data={
            "train": str(write_jsonl(tmp_path / "prompts.jsonl", PROMPTS[:9])),
            "eval": str(write_jsonl(tmp_path / "held.jsonl", PROMPTS[9:])),
        },
        train={"max_steps": 3, "batch_size": 3, "lr": 1e-2},
    )


def test_grpo_runs_and_reports_reward_and_kl(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    result = train(grpo_config(make_config, tmp_path), quiet=True)
    summary = result.summary
    for key in ("mean_reward_before", "mean_reward_after", "kl_after"):
        assert isinstance(summary[key], float)
    assert summary["kl_before"] == 0.0  # the policy is the reference before training (LoRA B = 0)
    assert summary["eval_loss_before"] is None  # no fixed-batch loss for RL
    steps = [m for m in result.metrics if "loss" in m]
    assert len(steps) == 3 and all(
        0.0 <= m["mean_reward"] <= 1.0 and m["completion_tokens"] > 0 for m in steps
    )


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (
            "tests.tasks.reward_fns:boom",
            r"reward function tests.tasks.reward_fns:boom raised ValueError: cannot score this \(sample 0",
        ),
        (
            "tests.tasks.reward_fns:not_a_number",
            r"reward function tests.tasks.reward_fns:not_a_number returned 'high', not a finite number",
        ),
        ("tests.tasks.nowhere:fn", r"task.reward_functions\[0\].function: cannot import tests.tasks.nowhere"),
        (
            "tests.tasks.reward_fns:missing",
            r"task.reward_functions\[0\].function: tests.tasks.reward_fns has no function 'missing'",
        ),
    ],
)
def test_bad_reward_functions(
    function: str, message: str, make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = grpo_config(make_config, tmp_path, reward_functions=[{"function": function}])
    with pytest.raises(UserError, match=message) as info:
        train(config, quiet=True)
    assert "\n" not in info.value.message


def test_rl_needs_a_reward_source_and_a_switchable_method(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    with pytest.raises(
        UserError, match="task grpo needs a reward source: task.reward_functions and/or task.reward_model"
    ):
        train(grpo_config(make_config, tmp_path, reward_functions=[]), quiet=True)
    config = grpo_config(make_config, tmp_path)
    config["method"] = {"name": "full"}
    with pytest.raises(
        UserError,
        match="task grpo with method.name=full: the KL reference is the model with its method switched off",
    ):
        train(config, quiet=True)


def test_builtin_rewards_and_weights() -> None:
    assert ends_with("", "Done.", marker=".") == 1.0 and ends_with("", "Done", marker=".") == 0.0
    assert contains("", "Hello World", text="world") == 1.0
    assert length_between("", "one two three", low=1, high=3) == 1.0
    assert length_between("", "a b c d e f", low=1, high=3) == pytest.approx(0.0)  # 3 words over a width of 3
    source = RewardSource([("a", ends_with, 2.0, {"marker": "!"}), ("b", contains, 0.5, {"text": "x"})])
    assert source(["p", "p"], ["x!", "y"]) == [2.5, 0.0]


def test_ppo_step_metrics_and_adaptive_kl(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    config = grpo_config(make_config, tmp_path)
    task = config["task"]
    config["task"] = {
        "name": "ppo",
        "max_new_tokens": task["max_new_tokens"],
        "reward_functions": task["reward_functions"],
        "kl_coef": 0.1,
        "kl_target": 1e-6,  # adaptive: β moves after every rollout
        "kl_horizon": 10,
        "ppo_epochs": 2,  # steps 2 and 4 reuse the rollouts of steps 1 and 3: the ratio moves off 1
    }
    config["train"]["max_steps"] = 4
    result = train(config, quiet=True)
    steps = [m for m in result.metrics if "loss" in m]
    for key in ("mean_reward", "kl", "kl_coef", "entropy", "clip_fraction", "value_loss"):
        assert all(isinstance(m[key], float) for m in steps), key
    assert steps[0]["kl_coef"] == pytest.approx(0.1)
    # the first rollout's KL is 0 (policy = reference), so the controller lowers β by its 20% cap · 3/10
    assert steps[2]["kl_coef"] == pytest.approx(0.1 * (1 - 0.2 * 3 / 10))
    assert {"mean_reward_before", "mean_reward_after", "kl_after"} <= set(result.summary)
    assert (
        steps[1]["mean_reward"] == steps[0]["mean_reward"]
        and steps[3]["mean_reward"] == steps[2]["mean_reward"]
    )


@pytest.mark.parametrize("advantage", ["rloo", "dr_grpo", "reinforce_pp"])
def test_grpo_takes_any_advantage_estimator(
    advantage: str, make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = grpo_config(make_config, tmp_path, advantage=advantage)
    result = train(config, quiet=True)
    assert result.summary["status"] == "finished"
    assert all(math.isfinite(m["loss"]) for m in result.metrics if "loss" in m)


def test_ppo_resumed_mid_epoch_reuses_the_saved_rollout(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """A checkpoint between PPO's epochs keeps the rollout the next step reuses (and β): the resumed run's
    curve equals the uninterrupted one's."""
    from tests.engine.test_resume import interrupt_after_checkpoint

    config = grpo_config(make_config, tmp_path)
    task = config["task"]
    config["task"] = {"name": "ppo", "max_new_tokens": task["max_new_tokens"],
                      "reward_functions": task["reward_functions"], "kl_coef": 0.1, "kl_target": 1e-6,
                      "kl_horizon": 10, "ppo_epochs": 2}
    config["train"].update(max_steps=4, save_every_steps=1, grad_accum=2, batch_size=2)
    config["data"]["train"] = str(write_jsonl(tmp_path / "eight.jsonl", PROMPTS[:8]))  # full steps of 2 × 2
    full = train(config, ["output.name=full"], quiet=True)
    with pytest.raises(KeyboardInterrupt):  # step-1 is saved after a fresh rollout, before its reuse
        train(config, ["output.name=cut"], quiet=True, callbacks=[interrupt_after_checkpoint(1)])
    resumed = train(config, ["output.name=cut"], quiet=True, resume=True)
    keys = ("loss", "mean_reward", "kl_coef", "clip_fraction")
    expected = [[m[k] for k in keys] for m in full.metrics if "loss" in m]
    got = [[m[k] for k in keys] for m in resumed.metrics if "loss" in m]
    assert len(got) == 4 and got[1][1] == got[0][1]  # step 2 reuses step 1's rollout: same rewards
    for want, have in zip(expected, got, strict=True):
        assert have == pytest.approx(want, abs=1e-6)


def test_grpo_iterations_reuse_the_rollout_and_clip_range_then_matters(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """task.iterations > 1: the next step trains on the same rollout against its sampling-time log-probs, so
    task.clip_range changes the update (with one iteration the ratio is 1 and clipping never acts)."""
    curves = {}
    for clip in (0.2, 1e-3):
        config = grpo_config(make_config, tmp_path, iterations=2, clip_range=clip)
        config["train"].update(max_steps=2, lr=5e-2)
        result = train(config, [f"output.name=clip-{clip}"], quiet=True)
        curves[clip] = [m for m in result.metrics if "loss" in m]
    wide, narrow = curves[0.2], curves[1e-3]
    assert wide[1]["mean_reward"] == wide[0]["mean_reward"]  # step 2 reuses step 1's completions
    assert wide[0]["loss"] == pytest.approx(narrow[0]["loss"], abs=1e-6)  # ratio 1 at the first step
    assert wide[1]["loss"] != pytest.approx(narrow[1]["loss"], abs=1e-6)  # the ratio moved: clipping acts


def test_rl_prompts_follow_data_truncation(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    long_prompt = [{"prompt": "word " * 200}]
    config = grpo_config(make_config, tmp_path)
    config["data"].update(train=str(write_jsonl(tmp_path / "long.jsonl", PROMPTS[:8] + long_prompt)),
                          max_length=64, truncation="error")
    with pytest.raises(UserError, match=r"long\.jsonl:9: the prompt has \d+ tokens, over data.max_length 64"):
        train(config, quiet=True)
    dropped = train(config, ["data.truncation=drop", "output.name=drop"], quiet=True)
    kept = train(config, ["data.truncation=truncate", "output.name=keep"], quiet=True)
    assert dropped.summary["data"]["prompts"] == 8 and kept.summary["data"]["prompts"] == 9


def test_a_run_leaves_the_registered_task_untouched(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    """Per-run state (reward source, reference switch, rollout cache, value head) lives on the run's own task
    object (`Task.start()`), so two runs in one process never share it."""
    from tunesmith.tasks import TASKS

    config = grpo_config(make_config, tmp_path)
    config["task"] = {"name": "ppo", "max_new_tokens": 4, "reward_functions": config["task"]["reward_functions"]}
    config["train"]["max_steps"] = 1
    train(config, quiet=True)
    registered = TASKS.get("ppo")
    assert registered.start() is not registered
    assert vars(registered) == {"rewards": None, "method": None, "reuse": None, "kl_controller": None,
                                "value_head": None, "cfg_task": None}
