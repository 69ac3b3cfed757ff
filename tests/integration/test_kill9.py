"""kill -9 anywhere: a real training process (a checkpoint every step, so most kills land in or near a
save) is killed at 20 random moments and resumed each time; every resume starts from a verified
checkpoint, and the final loss curve equals the uninterrupted run's. Slow (process starts); runs in CI."""

from __future__ import annotations

import random
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
from tunesmith.engine.checkpoint import newest_valid_checkpoint

KILLS = 20


def steps_logged(run_dir: Path) -> int:
    metrics = run_dir / "metrics.jsonl"
    return sum('"loss"' in line for line in metrics.read_text().splitlines()) if metrics.is_file() else 0


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_equals_uninterrupted(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = make_config(train={"max_steps": 80, "save_every_steps": 1, "keep_checkpoints": 2, "lr": 1e-3},
                         method={"dropout": 0.1}, eval={"every_steps": 20})
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(config))
    run_dir = Path(config["output"]["dir"]) / "t"
    rng = random.Random(0)
    kills = resumes = 0
    while kills < KILLS:
        started = newest_valid_checkpoint(run_dir / "checkpoints", lambda _: None) is not None
        flag = "--resume" if started else "--overwrite"
        resumes += started
        proc = subprocess.Popen([sys.executable, "-m", "tunesmith", "train", str(config_file), "--quiet", flag],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        target = steps_logged(run_dir) + rng.randint(1, 3)
        deadline = time.time() + 120
        while steps_logged(run_dir) < target and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.03))  # somewhere in the next step or its save
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
            break  # finished before this kill: the remaining budget is not needed
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    done = subprocess.run([sys.executable, "-m", "tunesmith", "train", str(config_file), "--quiet", "--resume"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert kills == KILLS and resumes >= kills - 3
    log = (run_dir / "train.log").read_text()
    assert log.count("verified against its manifest") >= resumes
    assert "removed the unfinished checkpoint" in log  # at least one kill landed inside a save
    reference = train(config, ["output.name=reference"], quiet=True)
    from tunesmith.runs.folder import RunFolder

    resumed = [m for m in RunFolder(run_dir).read_metrics() if "loss" in m]
    expected = [m for m in reference.metrics if "loss" in m]
    assert [m["step"] for m in resumed] == list(range(1, 81))
    assert [m["loss"] for m in resumed] == pytest.approx([m["loss"] for m in expected], abs=1e-6)
