"""Trackers: TensorBoard gets the same numbers as metrics.jsonl; a tracker whose library is missing is
one line naming the extra to install, before anything is created."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tunesmith import train
from tunesmith.errors import UserError


def test_tensorboard_gets_the_losses(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(make_config(output={"trackers": ["tensorboard"]}, eval={"every_steps": 2}), quiet=True)
    # accelerate writes trackers/<run name>/ (scalars) and a sub-folder for the config as hparams
    accumulator = EventAccumulator(str(result.run_dir / "trackers" / "t")).Reload()
    logged = [(e.step, e.value) for e in accumulator.Scalars("loss")]
    expected = [(m["step"], m["loss"]) for m in result.metrics if "loss" in m]
    assert [s for s, _ in logged] == [s for s, _ in expected]
    assert [v for _, v in logged] == pytest.approx([v for _, v in expected], rel=1e-6)
    assert [e.step for e in accumulator.Scalars("eval_loss")] == [0, 2, 4]


def test_wandb_runs_offline_in_the_run_folder(
    make_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    result = train(make_config(output={"trackers": ["wandb"]}), quiet=True)
    [offline] = list((result.run_dir / "wandb").glob("offline-run-*"))  # offline: nothing was sent
    [data] = list(offline.glob("run-*.wandb"))
    assert data.stat().st_size > 1000  # the logged steps (binary; `wandb sync` uploads it)


def test_missing_tracker_library_is_one_line(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from tunesmith.runs import trackers

    monkeypatch.setitem(trackers.PACKAGES, "wandb", "wandb_not_installed_here")  # as on a machine without it
    assert importlib.util.find_spec("wandb_not_installed_here") is None
    with pytest.raises(
        UserError,
        match=r"output.trackers: wandb needs the wandb_not_installed_here package; .*tunesmith\[wandb\]",
    ):
        train(make_config(output={"trackers": ["wandb"]}), quiet=True)
    assert not (tmp_path / "runs" / "t").exists()


def test_mlflow_gets_the_losses(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = train(make_config(output={"trackers": ["mlflow"]}), quiet=True)
    store = f"sqlite:///{(tmp_path / 'runs' / 'mlflow.db').resolve()}"  # under the output root by default
    client = mlflow.MlflowClient(tracking_uri=store)
    [experiment] = [e for e in client.search_experiments() if e.name == "t"]
    [run] = client.search_runs([experiment.experiment_id])
    history = client.get_metric_history(run.info.run_id, "loss")
    expected = [(m["step"], m["loss"]) for m in result.metrics if "loss" in m]
    logged = sorted((h.step, h.value) for h in history)
    assert [s for s, _ in logged] == [s for s, _ in expected]
    assert [v for _, v in logged] == pytest.approx([v for _, v in expected], rel=1e-6)
    assert run.data.params["method.name"] == "lora"
