"""Runs survive what rented machines do to them: SIGTERM checkpoints at the next step boundary and the
resumed run equals the uninterrupted one; a second signal stops at once without damaging the last
checkpoint; a full disk stops the run with one line and the previous checkpoint intact; resuming with
changed settings or changed data is refused, naming what changed."""

from __future__ import annotations

import errno
import json
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tunesmith import train
from tunesmith.engine.checkpoint import list_checkpoints, verify_checkpoint
from tunesmith.errors import UserError


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def start(config_file: Path, *args: str, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tunesmith", "train", str(config_file), "--quiet", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def wait_for_steps(run_dir: Path, count: int, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        metrics = run_dir / "metrics.jsonl"
        if metrics.is_file() and sum('"loss"' in line for line in metrics.read_text().splitlines()) >= count:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("training did not reach the step")


def losses(metrics: list[dict[str, Any]]) -> list[tuple[int, float]]:
    return [(m["step"], m["loss"]) for m in metrics if "loss" in m]


def test_sigterm_checkpoints_at_the_next_step_and_resume_is_exact(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = make_config(train={"max_steps": 300, "lr": 1e-3}, method={"dropout": 0.1})
    config_file = write_config(tmp_path / "run.yaml", config)
    run_dir = Path(config["output"]["dir"]) / "t"
    proc = start(config_file)
    wait_for_steps(run_dir, 5, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted by SIGTERM: stopped at step" in err and "continue with --resume" in err
    step = int(err.split("stopped at step ")[1].split()[0])
    assert 5 <= step < 300
    newest = list_checkpoints(run_dir / "checkpoints")[-1]
    assert newest.name == f"step-{step}"
    verify_checkpoint(newest)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
    resumed = train(config, quiet=True, resume=True)
    full = train(config, ["output.name=full"], quiet=True)
    got, expected = losses(resumed.metrics), losses(full.metrics)
    assert [s for s, _ in got] == list(range(1, 301))
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], abs=1e-6)
    assert resumed.summary["real_tokens_per_s"] > 0


def test_a_second_signal_stops_at_once_and_leaves_the_checkpoints_whole(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = make_config(train={"max_steps": 100_000, "save_every_steps": 3, "stop_grace_s": 600})
    config_file = write_config(tmp_path / "run.yaml", config)
    run_dir = Path(config["output"]["dir"]) / "t"
    proc = start(config_file)
    wait_for_steps(run_dir, 7, proc)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode in (130, 143)
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    assert checkpoints
    for checkpoint in checkpoints:
        verify_checkpoint(checkpoint)


def test_a_second_signal_during_a_save_stops_at_once_and_the_run_resumes_from_the_last_whole_checkpoint(
    make_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic: both signals land in the middle of writing step-4 (after its weights, before its
    manifest), delivered to this process's main thread, so they cannot merge or race the boundary."""
    import os

    import tunesmith.engine.checkpoint as checkpoint
    from tunesmith.engine.stopping import StoppedAtOnce

    real = checkpoint.save_file

    def signalled_save(tensors: dict[str, Any], filename: str) -> None:
        real(tensors, filename)
        if "step-4" in filename and filename.endswith("trainable.safetensors"):
            os.kill(os.getpid(), signal.SIGTERM)  # the first: only a flag, the save goes on
            os.kill(os.getpid(), signal.SIGTERM)  # the second: stop now, mid-save

    monkeypatch.setattr(checkpoint, "save_file", signalled_save)
    config = make_config(train={"max_steps": 6, "save_every_steps": 2, "stop_grace_s": 600})
    with pytest.raises(StoppedAtOnce, match="SIGTERM: stopped at once"):
        train(config, quiet=True)
    run_dir = Path(config["output"]["dir"]) / "t"
    assert [p.name for p in list_checkpoints(run_dir / "checkpoints")] == ["step-2"]
    assert not [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]  # no half save
    verify_checkpoint(run_dir / "checkpoints" / "step-2")
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(checkpoint, "save_file", real)
    resumed = train(config, quiet=True, resume=True)
    full = train(config, ["output.name=full"], quiet=True)
    assert [v for _, v in losses(resumed.metrics)] == pytest.approx([v for _, v in losses(full.metrics)], abs=1e-6)


def test_a_stop_during_the_final_evaluation_keeps_every_trained_step(
    make_config: Callable[..., dict[str, Any]],
) -> None:
    """The last step is checkpointed before the final evaluation, so stopping there loses no training:
    --resume only redoes the finishing work (evaluation, final/, summary)."""
    import os

    from tunesmith.engine.callbacks import Event, LoopState
    from tunesmith.engine.stopping import StoppedAtOnce

    def stop_in_final_eval(event: Event, state: LoopState, record: dict[str, Any]) -> None:
        if event is Event.EVALUATE and record.get("step") == 5:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)

    config = make_config(train={"max_steps": 5, "save_every_steps": 2, "stop_grace_s": 600})
    with pytest.raises(StoppedAtOnce):
        train(config, quiet=True, callbacks=[stop_in_final_eval])
    run_dir = Path(config["output"]["dir"]) / "t"
    assert list_checkpoints(run_dir / "checkpoints")[-1].name == "step-5"
    assert not (run_dir / "final").exists()
    resumed = train(config, quiet=True, resume=True)
    assert resumed.summary["status"] == "finished" and (run_dir / "final").is_dir()
    full = train(config, ["output.name=full"], quiet=True)
    assert [s for s, _ in losses(resumed.metrics)] == [1, 2, 3, 4, 5]
    assert [v for _, v in losses(resumed.metrics)] == pytest.approx([v for _, v in losses(full.metrics)], abs=1e-6)
    assert resumed.summary["eval_loss_after"] == pytest.approx(full.summary["eval_loss_after"], abs=1e-6)


def test_a_full_disk_stops_the_run_and_keeps_the_previous_checkpoint(
    make_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tunesmith.engine.checkpoint as checkpoint

    real = checkpoint.save_file
    calls: list[str] = []

    def disk_fills_up(tensors: Any, filename: str) -> None:
        calls.append(filename)
        if "step-3" in filename:  # the third checkpoint's first file finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tensors, filename)

    monkeypatch.setattr(checkpoint, "save_file", disk_fills_up)
    config = make_config(train={"max_steps": 6, "save_every_steps": 1, "keep_checkpoints": 2})
    with pytest.raises(UserError) as info:
        train(config, quiet=True)
    assert info.value.message == (
        "checkpoint step-3 could not be written (No space left on device); the earlier checkpoint step-2 is "
        "intact; free space and resume with --resume"
    )
    run_dir = Path(config["output"]["dir"]) / "t"
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step-1", "step-2"]
    verify_checkpoint(run_dir / "checkpoints" / "step-2")
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    from tunesmith.runs.registry import RunRegistry

    assert RunRegistry(Path(config["output"]["dir"])).list()[0]["status"] == "failed"


def test_a_file_size_limit_in_a_real_process_ends_with_one_line(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = make_config(method={"name": "full"}, train={"max_steps": 3, "save_every_steps": 1})
    config_file = write_config(tmp_path / "run.yaml", config)

    def limit() -> None:  # writes past 2 MB fail with EFBIG instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 * 2**20, 2 * 2**20))

    proc = start(config_file, preexec_fn=limit)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [
        "error: checkpoint step-1 could not be written (File too large); no earlier checkpoint exists; free "
        "space and resume with --resume"
    ]
    run_dir = Path(config["output"]["dir"]) / "t"
    assert not [p for p in (run_dir / "checkpoints").iterdir()]  # no half checkpoint left behind
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"


def test_resume_refuses_changed_settings_and_data(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    from tests.engine.test_resume import interrupt_after_checkpoint

    config = make_config(train={"max_steps": 4, "save_every_steps": 2})
    with pytest.raises(KeyboardInterrupt):
        train(config, quiet=True, callbacks=[interrupt_after_checkpoint(2)])
    with pytest.raises(UserError, match="config differs .* at data.max_length, train.lr; .*--force-resume"):
        train(config, ["train.lr=0.5", "data.max_length=64"], quiet=True, resume=True)
    train_file = Path(config["data"]["train"])
    original = train_file.read_text()
    train_file.write_text(original + original.splitlines()[0] + "\n")
    with pytest.raises(UserError, match="the data files changed since step-2 was written"):
        train(config, quiet=True, resume=True)
    train_file.write_text(original)
    resumed = train(config, ["eval.num_samples=1"], quiet=True, resume=True)  # a harmless change
    assert "eval.num_samples changed" in (resumed.run_dir / "train.log").read_text()
    assert resumed.summary["steps"] == 4
