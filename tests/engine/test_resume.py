"""An interrupted run resumed from its checkpoint reproduces the uninterrupted run."""

from collections.abc import Callable
from typing import Any

import pytest

from tunesmith import train
from tunesmith.engine.callbacks import Event, LoopState
from tunesmith.errors import UserError


def interrupt_after_checkpoint(at_step: int) -> Callable[[Event, LoopState, dict[str, Any]], None]:
    def callback(event: Event, state: LoopState, record: dict[str, Any]) -> None:
        if event is Event.CHECKPOINT and state.step == at_step:
            raise KeyboardInterrupt

    return callback


def test_resume_reproduces_uninterrupted_run(make_config: Callable[..., dict[str, Any]]) -> None:
    config = make_config(
        method={"dropout": 0.1},  # dropout draws random numbers: the RNG state must be restored too
        train={"max_steps": 6, "save_every_steps": 2, "keep_checkpoints": 2, "warmup_steps": 1},
        eval={"every_steps": 3},
    )
    full = train(config, ["output.name=full"], quiet=True)
    with pytest.raises(KeyboardInterrupt):
        train(config, ["output.name=cut"], quiet=True, callbacks=[interrupt_after_checkpoint(4)])
    cut_dir = full.run_dir.parent / "cut"
    assert (cut_dir / "checkpoints" / "step-4").is_dir() and not (cut_dir / "final").exists()
    assert '"status": "interrupted"' in (cut_dir / "summary.json").read_text()
    resumed = train(config, ["output.name=cut"], quiet=True, resume=True)

    def losses(metrics: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
        return [(m["step"], m[key]) for m in metrics if key in m]

    assert [s for s, _ in losses(resumed.metrics, "loss")] == [1, 2, 3, 4, 5, 6]
    for key in ("loss", "eval_loss"):
        expected, got = losses(full.metrics, key), losses(resumed.metrics, key)
        assert [s for s, _ in got] == [s for s, _ in expected]
        assert [v for _, v in got] == pytest.approx([v for _, v in expected], abs=1e-6)
    assert resumed.summary["eval_loss_after"] == pytest.approx(full.summary["eval_loss_after"], abs=1e-6)
    assert sorted(p.name for p in (cut_dir / "checkpoints").iterdir()) == [
        "step-4",
        "step-6",
    ]  # keep_checkpoints


def test_existing_run_is_not_overwritten(make_config: Callable[..., dict[str, Any]]) -> None:
    config = make_config(train={"max_steps": 1})
    first = train(config, quiet=True)
    marker = first.run_dir / "final" / "adapter_model.safetensors"
    before = marker.read_bytes()
    with pytest.raises(UserError, match="already exists; pass --resume .* --overwrite"):
        train(config, quiet=True)
    assert marker.read_bytes() == before
    again = train(config, ["train.max_steps=2"], quiet=True, overwrite=True)
    assert again.summary["steps"] == 2


def test_resume_refuses_changed_config(make_config: Callable[..., dict[str, Any]]) -> None:
    config = make_config(train={"max_steps": 1})
    train(config, quiet=True)
    with pytest.raises(UserError, match=r"config differs .* train\.lr"):
        train(config, ["train.lr=0.5"], quiet=True, resume=True)


def test_resume_keeps_early_stopping_and_the_watchers(make_config: Callable[..., dict[str, Any]]) -> None:
    # a learning rate far too high: the best step comes early, then patience runs out after the cut
    config = make_config(
        method={"name": "full"},
        train={
            "max_steps": 30,
            "lr": 0.05,
            "schedule": "constant",
            "max_grad_norm": None,
            "save_every_steps": 1,
        },
        eval={"every_steps": 1, "early_stopping": {"patience": 3}},
    )
    full = train(config, ["output.name=full"], quiet=True)
    best = full.summary["best_step"]
    assert full.summary["stopped_early"] and best + 3 == full.summary["steps"]
    with pytest.raises(KeyboardInterrupt):
        train(config, ["output.name=cut"], quiet=True, callbacks=[interrupt_after_checkpoint(best + 1)])
    resumed = train(config, ["output.name=cut"], quiet=True, resume=True)
    for key in ("best_step", "best_eval_loss", "stopped_early", "stop_reason", "steps"):
        assert (
            resumed.summary[key] == pytest.approx(full.summary[key])
            if isinstance(full.summary[key], float)
            else resumed.summary[key] == full.summary[key]
        ), key
    # the best step's weights (taken before the cut) became final/
    assert resumed.summary["eval_loss_after"] == pytest.approx(full.summary["eval_loss_after"], abs=1e-6)
    gaps = [[h["gap"] for h in r.summary["overfitting"]["history"]] for r in (full, resumed)]
    assert gaps[1] == pytest.approx(gaps[0], abs=1e-6)
