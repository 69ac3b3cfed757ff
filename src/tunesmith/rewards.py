"""Reward sources for PPO and GRPO: Python callables named in the config (`module:function`, summed
with weights) and/or a trained reward model (a `task: reward` run folder).

A callable gets (prompt, completion) as text, plus its configured kwargs, and returns a number. A
function that cannot be imported stops the run before training; one that raises or returns a
non-number mid-run stops it with a line naming the function and the sample (checkpoints already
written stay intact). A few rule-based rewards ship here for tests and quick experiments.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from tunesmith.errors import UserError
from tunesmith.registry import plugin_tables
from tunesmith.sections import Section, TaskSection

PLUGIN_GROUP = "tunesmith.rewards"

RewardFn = Callable[..., Any]


class RewardFunctionConfig(Section):
    function: str = Field(
        description="a Python callable as module:function (or a plugin reward's name), called as "
        "f(prompt, completion) → float"
    )
    weight: float = Field(1.0, description="its weight in the summed reward")
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="extra keyword arguments for the function"
    )


class RewardSourceConfig(TaskSection):
    """The reward keys of a task that scores completions (ppo, grpo)."""

    reward_functions: list[RewardFunctionConfig] = Field(
        default_factory=list, description="ppo/grpo: reward callables, summed with their weights"
    )
    reward_model: str | None = Field(
        None, description="ppo/grpo: a reward run folder whose model scores completions"
    )


@dataclass
class RewardSource:
    functions: list[tuple[str, RewardFn, float, dict[str, Any]]] = field(default_factory=list)
    model: Callable[[list[str], list[str]], list[float]] | None = None

    def __call__(self, prompts: list[str], completions: list[str]) -> list[float]:
        totals = [0.0] * len(prompts)
        for name, fn, weight, kwargs in self.functions:
            for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
                totals[i] += weight * call_reward(name, fn, prompt, completion, kwargs, i)
        if self.model is not None:
            totals = [t + s for t, s in zip(totals, self.model(prompts, completions), strict=True)]
        return totals


def call_reward(
    name: str, fn: RewardFn, prompt: str, completion: str, kwargs: dict[str, Any], index: int
) -> float:
    try:
        value = fn(prompt, completion, **kwargs)
    except Exception as exc:  # a user's function: report it as theirs, with the sample
        raise UserError(
            f"reward function {name} raised {type(exc).__name__}: {exc} (sample {index}, completion {completion[:60]!r})"
        ) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserError(
            f"reward function {name} returned {value!r}, not a finite number (sample {index}, completion {completion[:60]!r})"
        )
    return float(value)


def load_function(path: str, key: str) -> RewardFn:
    """`module:function`, or the name of a reward an installed package declares (entry points
    `tunesmith.rewards`)."""
    module_name, _, attr = path.partition(":")
    if ":" not in path and path:
        plugins = dict(plugin_tables(PLUGIN_GROUP))
        if path in plugins and callable(plugins[path]):
            return plugins[path]  # type: ignore[no-any-return]
        known = ", ".join(sorted(plugins)) or "none installed"
        raise UserError(f"{key}: {path!r} is neither module:function nor a plugin reward ({PLUGIN_GROUP}: {known})")
    if not module_name or not attr:
        raise UserError(f"{key}: {path!r} is not module:function")
    if module_name == "blocked_by_tunesmith":  # see runs.tuned.untrusted_config
        raise UserError(
            f"{key}: this run names reward functions; scoring with them imports their modules: pass "
            "tunesmith --allow-imports if you trust the run folder"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"{key}: cannot import {module_name} ({exc})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UserError(f"{key}: {module_name} has no function {attr!r}")
    return fn  # type: ignore[no-any-return]


def load_reward_source(task: RewardSourceConfig) -> RewardSource:
    functions = [
        (
            spec.function,
            load_function(spec.function, f"task.reward_functions[{i}].function"),
            spec.weight,
            spec.kwargs,
        )
        for i, spec in enumerate(task.reward_functions)
    ]
    model = load_reward_model(Path(task.reward_model)) if task.reward_model else None
    return RewardSource(functions, model)


def load_reward_model(run_dir: Path) -> Callable[[list[str], list[str]], list[float]]:
    """A trained reward run → a batched scorer (prompt, completion) → reward."""
    from tunesmith.runs.tuned import load_base, read_run  # the one declared back-edge: see .importlinter

    run = read_run(run_dir)
    if run.config.task.name != "reward":
        raise UserError(f"task.reward_model: {run_dir} is a {run.config.task.name} run, not a reward model")
    _, base, tokenizer = load_base(run)
    model = run.method.load_trained(base, run.final).eval()

    @torch.no_grad()
    def score(prompts: list[str], completions: list[str]) -> list[float]:
        enc = tokenizer(
            prompts,
            completions,
            padding=True,
            truncation=True,
            max_length=run.config.data.max_length,
            return_tensors="pt",
        )
        return (
            model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            .logits.squeeze(-1)
            .float()
            .tolist()
        )  # type: ignore[no-any-return]

    return score


# rule-based rewards, usable as tunesmith.rewards:NAME


def ends_with(prompt: str, completion: str, marker: str = ".") -> float:
    """1 when the completion ends with `marker`, else 0."""
    return float(completion.rstrip().endswith(marker))


def contains(prompt: str, completion: str, text: str = "", case_sensitive: bool = False) -> float:
    """1 when the completion contains `text`, else 0."""
    if case_sensitive:
        return float(text in completion)
    return float(text.lower() in completion.lower())


def length_between(prompt: str, completion: str, low: int = 1, high: int = 50) -> float:
    """1 when the completion has between `low` and `high` words, falling off linearly outside."""
    words = len(completion.split())
    if low <= words <= high:
        return 1.0
    distance = low - words if words < low else words - high
    return max(0.0, 1.0 - distance / max(high, 1))
