"""Overfitting watch, forgetting watch and quality gates."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tunesmith import train
from tunesmith.cli import main
from tunesmith.config import GateRule
from tunesmith.engine.callbacks import Event, LoopState, OverfittingWatch
from tunesmith.evaluate.gates import check_gate
from tunesmith.runs.registry import RunRegistry


def drive(watch: OverfittingWatch, points: list[tuple[float, float]]) -> None:
    """(train loss, eval loss) per evaluation, one step each."""
    state = LoopState(step=0, total_steps=100)
    for train_loss, eval_loss in points:
        state.step += 1
        watch(Event.STEP_END, state, {"loss": train_loss})
        record = {"eval_loss": eval_loss}
        watch(Event.EVALUATE, state, record)
        assert record["generalization_gap"] == pytest.approx(eval_loss - watch.train_loss)


def test_overfitting_watch_warns_once_when_eval_rises_while_train_falls() -> None:
    said: list[str] = []
    watch = OverfittingWatch(patience=3, warn=said.append)
    watch.SMOOTHING = 1.0  # no smoothing: the numbers below are the smoothed train loss
    drive(watch, [(3.0, 3.1), (2.0, 2.5), (1.5, 2.6), (1.0, 2.7)])
    assert said == []  # two rises so far
    drive(watch, [(0.5, 2.9), (0.3, 3.0)])
    assert len(said) == 1 and "rose for 3 evaluations in a row while train loss fell" in said[0]
    summary = watch.summary()
    assert summary["warned"] and summary["evaluations"] == 6
    assert summary["gap_first"] == pytest.approx(0.1) and summary["gap_last"] == pytest.approx(2.7)
    assert summary["gap_trend_per_100_steps"] > 0


def test_overfitting_watch_is_quiet_when_both_fall() -> None:
    said: list[str] = []
    watch = OverfittingWatch(patience=2, warn=said.append)
    drive(watch, [(3.0 - i * 0.2, 3.2 - i * 0.2) for i in range(8)])
    assert said == [] and watch.summary()["warned"] is False


@pytest.mark.parametrize(
    ("metric", "rule", "before", "after", "passed", "why"),
    [
        ("general_perplexity", {"max_increase": 0.1}, 20.0, 21.0, True, "passes"),
        ("general_perplexity", {"max_increase": 0.1}, 20.0, 23.0, False, "rose 15.0%"),
        ("accuracy", {"beat_base": True}, 0.5, 0.5, False, "does not beat the base model's 0.5"),
        ("accuracy", {"beat_base": True, "min": 0.6}, 0.5, 0.7, True, "passes"),
        ("eval_loss", {"beat_base": True}, 2.0, 1.0, True, "passes"),  # lower is better
        ("eval_loss", {"max": 0.5}, 2.0, 1.0, False, "above max 0.5"),
        ("rougeL", {"max_decrease": 0.05}, 0.4, 0.3, False, "fell 25.0%"),
        ("rougeL", {"min": 0.2}, None, None, False, "was not measured"),
    ],
)
def test_gate_rules(
    metric: str, rule: dict[str, Any], before: Any, after: Any, passed: bool, why: str
) -> None:
    ok, message = check_gate(metric, GateRule(**rule), before, after)
    assert ok is passed and why in message


def test_a_gate_without_a_rule_is_a_config_error(make_config: Callable[..., dict[str, Any]]) -> None:
    from tunesmith.errors import UserError

    with pytest.raises(UserError, match="eval.gates.accuracy.*needs a rule"):
        train(make_config(eval={"gates": {"accuracy": {}}}), quiet=True)


def test_forgetting_and_a_failed_gate(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(
        method={"name": "full"},
        train={"max_steps": 6, "lr": 1e-2},
        eval={
            "every_steps": 2,
            "gates": {"general_perplexity": {"max_increase": 0.01}, "eval_loss": {"beat_base": True}},
        },
    )
    config_file = tmp_path / "c.json"
    config_file.write_text(json.dumps(config))
    with pytest.raises(SystemExit) as stop:
        main(["train", str(config_file)])
    assert stop.value.code == 3
    err = capsys.readouterr().err
    assert "failed gate: general_perplexity: rose" in err
    summary = json.loads((tmp_path / "runs" / "t" / "summary.json").read_text())
    forgetting = summary["forgetting"]
    # a tiny random model drilled on four chats: ordinary English gets less likely
    assert forgetting["general_perplexity_after"] > forgetting["general_perplexity_before"] * 1.01
    assert summary["status"] == "failed-gate"
    gates = {g["metric"]: g for g in summary["gates"]}
    assert gates["general_perplexity"]["passed"] is False and gates["eval_loss"]["passed"] is True
    assert summary["overfitting"]["evaluations"] == 3
    metrics = [
        json.loads(line) for line in (tmp_path / "runs" / "t" / "metrics.jsonl").read_text().splitlines()
    ]
    assert sum("generalization_gap" in m for m in metrics) >= 3
    [run] = RunRegistry(tmp_path / "runs").list()
    assert run["status"] == "failed-gate" and run["metrics"]["general_perplexity_after"] == pytest.approx(
        forgetting["general_perplexity_after"]
    )


def test_user_general_text(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    general = tmp_path / "general.jsonl"
    general.write_text(json.dumps({"text": "The cat sat on the mat and looked at the garden."}) + "\n")
    summary = train(make_config(eval={"general_data": str(general)}), quiet=True).summary
    assert summary["forgetting"]["general_perplexity_before"] > 1.0
    from tunesmith.errors import UserError

    with pytest.raises(UserError, match="eval.general_data: .*missing.jsonl does not exist"):
        train(
            make_config(eval={"general_data": str(tmp_path / "missing.jsonl")}, output={"name": "x"}),
            quiet=True,
        )
    assert not (tmp_path / "runs" / "x").exists()
