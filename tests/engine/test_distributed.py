"""Several processes, one run (DDP on gloo, launched by `tunesmith train --nproc 2`, i.e. PyTorch's elastic
launcher): equal to one process with the same global batch, written once, and a killed rank ends the
job with one line while its last checkpoint resumes, on two processes or on one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from safetensors.torch import load_file

from tunesmith import train
from tunesmith.errors import UserError
from tunesmith.runs.registry import RunRegistry

pytestmark = pytest.mark.slow  # each job starts three Python processes that import torch


def launch(config: dict[str, Any], *args: str, tmp: Path) -> subprocess.Popen[str]:
    path = tmp / f"{config['output']['name']}-{len(list(tmp.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.Popen(
        [sys.executable, "-m", "tunesmith", "train", str(path), "--quiet", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TUNESMITH_ALLOCATOR": "system"},
    )  # fmt: skip


def finish(process: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str]:
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err


def curve(run: Path, key: str) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r[key]) for r in rows if key in r]


def adapter(run: Path) -> dict[str, Any]:
    return load_file(str(run / "final" / "adapter_model.safetensors"))


@pytest.fixture
def ddp_config(make_config: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    # unpacked rows: 16 records, 4 to a step, so no step of an epoch is short on either world size
    return make_config(
        data={"packing": False},
        train={"max_steps": 6, "batch_size": 2, "save_every_steps": 2, "keep_checkpoints": 5},
        eval={"every_steps": 3, "num_samples": 0},
        output={"name": "two"},
    )


def test_two_processes_equal_one_with_the_same_global_batch(ddp_config: dict[str, Any], tmp_path: Path) -> None:
    code, err = finish(launch(ddp_config, "--nproc", "2", tmp=tmp_path))
    assert code == 0, err[-3000:]
    one = train(ddp_config, ["output.name=one", "train.batch_size=4"], quiet=True).run_dir
    two = one.parent / "two"
    for key in ("loss", "eval_loss"):
        got, expected = curve(two, key), curve(one, key)
        assert [s for s, _ in got] == [s for s, _ in expected]
        assert [v for _, v in got] == pytest.approx([v for _, v in expected], abs=1e-5)
    assert [s for s, _ in curve(two, "loss")] == [1, 2, 3, 4, 5, 6]  # one line per step: written once
    for name, tensor in adapter(one).items():
        assert (adapter(two)[name] - tensor).abs().max().item() < 1e-5, name
    log = (two / "train.log").read_text()
    assert log.count("step 6/6") == 1 and log.count("resuming") == 0
    assert "2 processes (ddp): global batch 2 rows × 1 accumulation × 2 processes = 4 rows per step\n" in log
    rows = [r for r in RunRegistry(one.parent).list() if r["name"] == "two"]
    assert len(rows) == 1 and rows[0]["status"] == "finished"
    assert json.loads((two / "summary.json").read_text())["steps"] == 6
    state = json.loads((two / "checkpoints" / "step-6" / "training_state.json").read_text())
    assert len(state["rng_other_ranks"]) == 1  # rank 1's RNG state beside rank 0's


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_torchrun_and_accelerate_launch_run_the_same_job(
    launcher: str, ddp_config: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(ddp_config))
    bin_dir = Path(sys.executable).parent
    command = {
        "torchrun": [str(bin_dir / "torchrun"), "--standalone", "--nproc-per-node", "2"],
        "accelerate": [str(bin_dir / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
                       "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"],
    }[launcher]  # fmt: skip
    done = subprocess.run(
        [*command, "-m", "tunesmith", "train", str(path), "--quiet"], capture_output=True, text=True, timeout=300,
        env={**os.environ, "TUNESMITH_ALLOCATOR": "system"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines() == [f"run folder: {Path(ddp_config['output']['dir']) / 'two'}"]
    one = train(ddp_config, ["output.name=one", "train.batch_size=4"], quiet=True).run_dir
    got, expected = curve(one.parent / "two", "loss"), curve(one, "loss")
    assert [s for s, _ in got] == [1, 2, 3, 4, 5, 6]
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], abs=1e-5)


def _rank_pid(launcher: int, rank: int) -> int | None:
    for child in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((child / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (child / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == launcher and f"RANK={rank}".encode() in environ:
            return int(child.name)
    return None


def test_a_killed_rank_ends_the_job_and_its_checkpoint_resumes(ddp_config: dict[str, Any], tmp_path: Path) -> None:
    # a constant rate and checkpoints at every step: the kill lands a few steps in, whatever the speed
    steps = 40
    config = {**ddp_config, "train": {**ddp_config["train"], "max_steps": steps, "save_every_steps": 1,
                                      "keep_checkpoints": 3, "schedule": "constant"}}
    job = launch(config, "--nproc", "2", tmp=tmp_path)
    run = Path(config["output"]["dir"]) / "two"
    deadline = time.monotonic() + 240
    while not any(int(p.name[5:]) >= 3 for p in (run / "checkpoints").glob("step-*")):
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()[1][-3000:]
        time.sleep(0.05)
    pid = _rank_pid(job.pid, 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    code, err = finish(job, timeout=90)
    assert time.monotonic() - killed < 60
    assert code != 0
    assert "error: rank 1 was killed by SIGKILL" in err, err[-3000:]
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"

    # the newest checkpoint is whole: resumed on two processes, and (a copy of the run) on one process with
    # the same global batch, both end as the uninterrupted run does
    subprocess.run(["cp", "-r", str(run), str(run.parent / "copy")], check=True)
    saved = yaml.safe_load((run.parent / "copy" / "config.yaml").read_text())
    (run.parent / "copy" / "config.yaml").write_text(yaml.safe_dump({**saved, "output": {**saved["output"], "name": "copy"}}))
    code, err = finish(launch(config, "--nproc", "2", "--resume", tmp=tmp_path))
    assert code == 0, err[-3000:]
    copy = {**config, "output": {**config["output"], "name": "copy"}}
    with pytest.raises(UserError, match=r"job of 2 process\(es\) with 4 rows per step, this one has 1 with 2"):
        train(copy, quiet=True, resume=True)  # the same config on 1 process: half the global batch
    train(copy, ["train.batch_size=4"], quiet=True, resume=True, force_resume=True)  # batch 4 × 1 = 2 × 2
    straight = train(config, ["output.name=straight", "train.batch_size=4"], quiet=True).run_dir
    for resumed in (run, run.parent / "copy"):
        got, expected = curve(resumed, "loss"), curve(straight, "loss")
        assert [s for s, _ in got] == list(range(1, steps + 1))
        # 2 ranks sum gradients in another order than 1 process: 1e-6 per step, compounding over the run
        assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=2e-5)
        for name, tensor in adapter(straight).items():
            assert (adapter(resumed)[name] - tensor).abs().max().item() < 1e-4, name


def test_sigterm_to_the_launcher_checkpoints_once(ddp_config: dict[str, Any], tmp_path: Path) -> None:
    config = {**ddp_config, "train": {**ddp_config["train"], "max_steps": 20000, "save_every_steps": 10000}}
    job = launch(config, "--nproc", "2", tmp=tmp_path)
    run = Path(config["output"]["dir"]) / "two"
    deadline = time.monotonic() + 240
    while not (run / "metrics.jsonl").is_file() or len(curve(run, "loss")) < 20:
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()[1][-3000:]
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)
    code, err = finish(job, timeout=60)
    assert code == 143, err[-3000:]
    said = [line for line in err.splitlines() if "interrupted by" in line]
    assert len(said) == 1 and said[0].startswith("interrupted by SIGTERM: stopped at step "), err[-3000:]
    step = int(said[0].split("stopped at step ")[1].split()[0])
    assert [p.name for p in (run / "checkpoints").iterdir()] == [f"step-{step}"]  # every rank, one boundary
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    assert "Traceback" not in err


def test_bad_requests_are_one_line_before_any_process_starts(ddp_config: dict[str, Any], tmp_path: Path) -> None:
    cores = os.cpu_count() or 1
    asked = [
        (("--nproc", str(cores + 1)),
         f"error: --nproc {cores + 1}: this machine has {cores} CPU cores; at most {cores} processes (gloo, one "
         "per core)"),
        (("distributed.strategy=fsdp", "--nproc", "2"),
         "error: distributed.strategy fsdp: not available yet (accelerate runs FSDP and DeepSpeed on CUDA GPUs "
         "only, and tunesmith has not been proven with them); use distributed.strategy: ddp"),
        (("train.lr=fast", "--nproc", "2"), "error: config key train.lr: Input should be a valid number"),
        (("train.auto_micro_batch=true", "--nproc", "2"),
         "error: train.auto_micro_batch works in one process only; set it to false for --nproc > 1"),
    ]  # fmt: skip
    for args, line in asked:
        started = time.monotonic()
        code, err = finish(launch(ddp_config, *args, tmp=tmp_path))
        assert code == 2 and err.strip().splitlines()[0].startswith(line), err[-2000:]
        assert len(err.strip().splitlines()) == 1 and "rank" not in err
        assert time.monotonic() - started < 60
    assert not (Path(ddp_config["output"]["dir"]) / "two").exists()
