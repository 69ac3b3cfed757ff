"""`tunesmith estimate` on the tiny model: the contract's fields, exact parameter counts, a breakdown that
adds up, the fit verdict with what would fit, one-line errors, and the estimate kept in every summary."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tunesmith import train
from tunesmith.errors import UserError
from tunesmith.estimate.estimator import estimate_config

CONTRACT = {"total_params", "trainable_params", "peak_memory_mb", "train_s", "fits", "max_micro_batch", "breakdown"}


def test_the_estimate_counts_exactly_and_adds_up(make_config: Callable[..., dict[str, Any]]) -> None:
    config = make_config(train={"max_steps": 2})
    found = estimate_config(config).to_json()
    assert set(found) >= CONTRACT
    result = train(config, quiet=True)
    assert (found["trainable_params"], found["total_params"]) == (
        result.summary["trainable_params"], result.summary["total_params"]
    )
    assert found["peak_memory_mb"] == pytest.approx(sum(found["breakdown"].values()))
    assert set(found["breakdown"]) == {"framework", "weights", "gradients", "optimizer", "activations"}
    assert found["breakdown"]["optimizer"] == pytest.approx(2 * found["breakdown"]["gradients"])  # AdamW: 2 moments
    assert found["fits"] and found["max_micro_batch"] >= 2 and found["steps"] == 2
    # the run keeps its own estimate beside the measurement
    kept = json.loads((result.run_dir / "summary.json").read_text())["estimate"]
    assert kept["peak_memory_mb"] > 0 and kept["train_s"] > 0


def test_activations_grow_with_the_batch_and_shrink_with_checkpointing(
    make_config: Callable[..., dict[str, Any]],
) -> None:
    config = make_config(data={"packing": False}, train={"max_steps": 1})
    small = estimate_config(config, ["train.batch_size=1"]).breakdown["activations"]
    large = estimate_config(config, ["train.batch_size=4"]).breakdown["activations"]
    checkpointed = estimate_config(config, ["train.batch_size=4", "train.gradient_checkpointing=true"])
    assert large > 2 * small
    assert checkpointed.breakdown["activations"] < large


def test_a_job_of_several_processes_is_estimated_per_process(make_config: Callable[..., dict[str, Any]]) -> None:
    """--nproc 2: each step's rows are shared (half the steps of an epoch); DDP adds its gradient buckets,
    FSDP holds half of the weights, gradients and moments plus what it gathers whole while it runs."""
    config = make_config(method={"name": "full"}, data={"packing": False}, train={"max_steps": None, "epochs": 1})
    one = estimate_config(config)
    ddp = estimate_config(config, processes=2)
    fsdp = estimate_config(config, ["distributed.strategy=fsdp"], processes=2)
    assert (one.steps, ddp.steps, fsdp.steps) == (8, 4, 4)  # 16 records, 2 per process per step
    assert (ddp.processes, ddp.strategy, fsdp.strategy, one.strategy) == (2, "ddp", "fsdp", "single")
    assert ddp.breakdown["ddp_buckets"] == ddp.breakdown["gradients"] == one.breakdown["gradients"]
    for part in ("weights", "gradients", "optimizer"):
        assert fsdp.breakdown[part] == pytest.approx(one.breakdown[part] / 2)
    assert 0 < fsdp.breakdown["fsdp_gathered"] <= one.breakdown["weights"]
    assert fsdp.breakdown["fsdp_logits"] > 0  # a sharded model's loss goes through the full logits
    for found in (ddp, fsdp):
        assert found.peak_memory_mb == pytest.approx(sum(found.breakdown.values()))
    with pytest.raises(UserError, match="^distributed.strategy fsdp: this method keeps its trained weights outside"):
        estimate_config(make_config(method={"name": "prompt"}), ["distributed.strategy=fsdp"], processes=2)


def test_a_run_that_does_not_fit_says_what_would(make_config: Callable[..., dict[str, Any]]) -> None:
    config = make_config(method={"name": "full"}, train={"max_steps": 1})
    roomy = estimate_config(config)
    fixed = roomy.peak_memory_mb - roomy.breakdown["activations"]
    tight = estimate_config(config, memory_gb=(fixed + 0.3 * roomy.breakdown["activations"]) / 1024 / 0.92)
    assert not tight.fits and tight.max_micro_batch < 2
    assert tight.suggestions, "some change fits"
    for tip in tight.suggestions:
        assert tip["peak_memory_mb"] < tight.peak_memory_mb and tip["overrides"]


def test_bad_requests_are_one_line(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(make_config()))
    done = subprocess.run([sys.executable, "-m", "tunesmith", "estimate", str(path), "--device", "tpu9"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "unknown device; known: cpu, cuda, t4, l4" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(UserError, match="task dpo is not estimated yet"):
        estimate_config(make_config(task={"name": "dpo"}))


def test_the_cli_writes_the_contract(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(make_config()))
    out = tmp_path / "estimate.json"
    done = subprocess.run([sys.executable, "-m", "tunesmith", "estimate", str(path), "--device", "t4", "--json",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(out.read_text())
    assert set(found) >= CONTRACT and found["device"] == "T4" and found["memory_mb"] == 16 * 1024
    assert "peak memory" in done.stdout and "fits" in done.stdout
