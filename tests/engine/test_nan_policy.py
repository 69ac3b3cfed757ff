"""train.nan_policy: `error` stops at the first non-finite loss or gradient naming the step and its
records; `skip_step` leaves the weights bit-identical, counts the skip and stops after too many in a
row; no checkpoint of non-finite weights is ever written, and summary.json stays valid JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tunesmith import train
from tunesmith.engine import loop
from tunesmith.engine.callbacks import Event, LoopState
from tunesmith.errors import UserError


def poison_steps(monkeypatch: pytest.MonkeyPatch, steps: set[int]) -> list[int]:
    """Fault injection: the gradients (and loss) of these optimizer steps become NaN."""
    real = loop.accumulate_gradients
    calls: list[int] = []

    def poisoned(acc: Any, model: Any, batches: Any) -> tuple[float, int]:
        loss, count = real(acc, model, batches)
        calls.append(len(calls) + 1)
        if len(calls) in steps:
            for param in model.parameters():
                if param.grad is not None:
                    param.grad.fill_(float("nan"))
            return float("nan"), count
        return loss, count

    monkeypatch.setattr(loop, "accumulate_gradients", poisoned)
    return calls


def test_error_policy_names_the_step_and_records(
    make_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    poison_steps(monkeypatch, {3})
    config = make_config(train={"max_steps": 5, "save_every_steps": 1})
    with pytest.raises(UserError, match=r"step 3: loss nan, gradient norm nan \(not finite\) on the records .*train.jsonl:\d+"):
        train(config, quiet=True)
    run_dir = Path(config["output"]["dir"]) / "t"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-1", "step-2"]


def test_skip_step_keeps_the_weights_and_counts(
    make_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    poison_steps(monkeypatch, {2, 3})
    snapshots: dict[int, list[torch.Tensor]] = {}
    import tunesmith.training as training

    original = training.TrainingSession.loop_parts
    trained: list[Any] = []

    def loop_parts(self: Any, callbacks: list[Any], stop: Any = None) -> Any:
        trained.append(self.wrapped)
        return original(self, callbacks, stop)

    def snapshot(event: Event, state: LoopState, record: dict[str, Any]) -> None:
        if event is Event.STEP_END:
            snapshots[state.step] = [p.detach().clone() for p in trained[0].parameters() if p.requires_grad]

    monkeypatch.setattr(training.TrainingSession, "loop_parts", loop_parts)
    config = make_config(train={"max_steps": 5, "nan_policy": "skip_step"})
    result = train(config, quiet=True, callbacks=[snapshot])
    for step in (2, 3):  # skipped updates: bit-identical to the step before
        for before, after in zip(snapshots[step - 1], snapshots[step], strict=True):
            assert torch.equal(before, after)
    assert not all(torch.equal(a, b) for a, b in zip(snapshots[3], snapshots[4], strict=True))
    steps = [m for m in result.metrics if "skipped" in m]
    assert [m["skipped"] for m in steps] == [False, True, True, False, False]
    assert steps[-1]["skipped_steps"] == 2 and steps[1]["loss"] is None  # NaN is written as null
    json.loads((result.run_dir / "summary.json").read_text())  # NaN losses never reach it as bare NaN
    assert "NaN" not in (result.run_dir / "metrics.jsonl").read_text()


def test_too_many_skips_in_a_row_stop_the_run(
    make_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    poison_steps(monkeypatch, {2, 3, 4})
    config = make_config(train={"max_steps": 6, "nan_policy": "skip_step", "max_consecutive_skips": 3})
    with pytest.raises(UserError, match="3 updates in a row skipped for non-finite values"):
        train(config, quiet=True)


def test_no_checkpoint_of_non_finite_weights(tmp_path: Path) -> None:
    from tunesmith.engine.checkpoint import CheckpointError, save_checkpoint
    from tunesmith.engine.sharding import trained

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    save_checkpoint(tmp_path, 1, *trained(model, optimizer), scheduler, {}, keep=1)
    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    with pytest.raises(CheckpointError, match="trainable weights are not finite"):
        save_checkpoint(tmp_path, 2, *trained(model, optimizer), scheduler, {}, keep=1)
    assert [p.name for p in tmp_path.iterdir()] == ["step-1"]  # the good one was not rotated out


def test_out_of_memory_is_one_line_with_fixes_for_this_config(
    make_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def exhausted(*_: Any) -> Any:  # what torch raises when an allocation fails
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:116] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(loop, "accumulate_gradients", exhausted)
    config = make_config(train={"max_steps": 2, "batch_size": 4}, data={"max_length": 512})
    with pytest.raises(UserError) as info:
        train(config, quiet=True)
    assert info.value.message.startswith("out of memory while training")
    assert "train.batch_size=2 with train.grad_accum=2" in info.value.message
    assert "data.max_length=256" in info.value.message and "gradient_checkpointing=true" in info.value.message


def test_deterministic_runs_give_bit_equal_loss_curves(make_config: Callable[..., dict[str, Any]]) -> None:
    config = make_config(train={"max_steps": 6, "deterministic": True}, method={"dropout": 0.1})
    first = train(config, ["output.name=first"], quiet=True)
    second = train(config, ["output.name=second"], quiet=True)
    curve = [m["loss"] for m in first.metrics if "loss" in m]
    assert curve == [m["loss"] for m in second.metrics if "loss" in m] and len(curve) == 6


def test_auto_micro_batch_backs_off_on_out_of_memory_with_the_same_result(
    make_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(train={"max_steps": 3, "batch_size": 4, "save_every_steps": 1, "auto_micro_batch": True})
    reference = train(config, ["output.name=reference"], quiet=True)
    real = loop.accumulate_gradients

    def big_batches_fail(acc: Any, model: Any, batches: Any) -> Any:  # micro-batches of 4 rows do not fit
        if any(b.input_ids.shape[0] > 2 for b in batches):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(acc, model, batches)

    monkeypatch.setattr(loop, "accumulate_gradients", big_batches_fail)
    backed_off = train(config, quiet=True)
    losses = [m["loss"] for m in backed_off.metrics if "loss" in m]
    assert losses == pytest.approx([m["loss"] for m in reference.metrics if "loss" in m], abs=1e-5)
    state = json.loads((backed_off.run_dir / "checkpoints" / "step-3" / "state.json").read_text())
    assert state["loop"]["micro_batch"] == 2
    with pytest.raises(UserError, match="out of memory while training"):
        train(config, ["output.name=no-backoff", "train.auto_micro_batch=false"], quiet=True)
