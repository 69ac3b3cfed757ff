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


@pytest.mark.parametrize("tracker", ["wandb", "mlflow"])
def test_missing_tracker_library_is_one_line(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path, tracker: str
) -> None:
    import importlib.util

    assert importlib.util.find_spec(tracker) is None, (
        f"{tracker} is installed here; this test needs it absent"
    )
    with pytest.raises(
        UserError, match=rf"output.trackers: {tracker} needs the {tracker} package; .*tunesmith\[{tracker}\]"
    ):
        train(make_config(output={"trackers": [tracker]}), quiet=True)
    assert not (tmp_path / "runs" / "t").exists()
