"""Early stopping: training stops when eval loss stops improving, the best step's weights become
final/ (what export and eval use), and the summary says where the best was and why training stopped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tunesmith import train
from tunesmith.cli import main
from tunesmith.errors import UserError


def test_stops_and_keeps_the_best(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    # a learning rate far too high: eval loss soon rises, so the best step comes early
    config = make_config(
        method={"name": "full"},
        train={"max_steps": 30, "lr": 0.05, "schedule": "constant", "max_grad_norm": None},
        eval={"every_steps": 1, "early_stopping": {"patience": 2, "min_delta": 0.0}},
    )
    result = train(config, quiet=True)
    summary = result.summary
    assert summary["stopped_early"] is True and "did not improve" in summary["stop_reason"]
    assert summary["steps"] < 30 and summary["best_step"] < summary["steps"]
    evals = [m["eval_loss"] for m in result.metrics if "eval_loss" in m]
    assert summary["best_eval_loss"] == pytest.approx(min(evals))
    assert summary["eval_loss_after"] == pytest.approx(summary["best_eval_loss"], rel=1e-5)
    out = tmp_path / "m.json"
    main(["eval", str(result.run_dir), "--data", str(tmp_path / "eval.jsonl"), "--json", str(out)])
    assert json.loads(out.read_text())["eval_loss"] == pytest.approx(summary["best_eval_loss"], rel=1e-4)


def test_without_early_stopping_the_summary_still_says_why(
    make_config: Callable[..., dict[str, Any]],
) -> None:
    summary = train(make_config(eval={"every_steps": 2}), quiet=True).summary
    assert summary["stopped_early"] is False and summary["stop_reason"] == "reached 4 steps"
    assert summary["best_step"] is not None and summary["best_eval_loss"] is not None


def test_early_stopping_needs_evaluations(make_config: Callable[..., dict[str, Any]]) -> None:
    with pytest.raises(
        UserError, match="eval.early_stopping needs evaluations during training: set eval.every_steps"
    ):
        train(make_config(eval={"early_stopping": {"patience": 2}}), quiet=True)
