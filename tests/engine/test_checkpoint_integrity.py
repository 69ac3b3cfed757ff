"""Checkpoints are whole or absent and never run code: a manifest verified on resume (truncated, altered
or manifest-less checkpoints are named and skipped for the previous good one), no pickle anywhere (a
planted payload does not run; `torch.load` / `torch.save` are banned by the linter), saves of the same step
never leave a half-deleted folder, stale temporaries are cleaned, and a cut metrics line does not break
resume."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tunesmith import train
from tunesmith.engine.checkpoint import (
    MANIFEST,
    CheckpointError,
    clean_stale,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from tunesmith.engine.sharding import trained
from tunesmith.engine.state_codec import decode, encode

ROOT = Path(__file__).resolve().parents[2]


def tiny_training(tmp_path: Path) -> tuple[torch.nn.Module, Any, Any]:
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    for _ in range(2):
        model(torch.randn(2, 4)).sum().backward()
        optimizer.step()
        scheduler.step()
    return model, optimizer, scheduler


def test_training_state_round_trips_without_pickle(tmp_path: Path) -> None:
    model, optimizer, scheduler = tiny_training(tmp_path)
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "numbers": (1, 2.5, None)}
    tensors: dict[str, torch.Tensor] = {}
    data = json.loads(json.dumps(encode(state, tensors)))
    back = decode(data, tensors)
    assert back["numbers"] == (1, 2.5, None)
    assert back["optimizer"]["param_groups"] == optimizer.state_dict()["param_groups"]
    for key, value in optimizer.state_dict()["state"][0].items():
        torch.testing.assert_close(back["optimizer"]["state"][0][key], value)
    assert back["scheduler"] == scheduler.state_dict()


def test_damaged_checkpoints_are_named_and_skipped(tmp_path: Path) -> None:
    from tunesmith.engine.checkpoint import newest_valid_checkpoint

    model, optimizer, scheduler = tiny_training(tmp_path)
    root = tmp_path / "checkpoints"
    for step in (1, 2, 3, 4):
        save_checkpoint(root, step, *trained(model, optimizer), scheduler, {}, keep=4, identity={"config_hash": "abc"})
    assert json.loads((root / "step-1" / MANIFEST).read_text())["config_hash"] == "abc"
    weights = root / "step-4" / "trainable.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])  # truncated by a full disk
    state = root / "step-3" / "state.json"
    state.write_text(state.read_text().replace('"step": 3', '"step": 9'))  # altered, same size
    (root / "step-2" / MANIFEST).unlink()  # never finished
    with pytest.raises(CheckpointError, match="trainable.safetensors has .* bytes, the manifest says .* \\(truncated\\)"):
        verify_checkpoint(root / "step-4")
    with pytest.raises(CheckpointError, match="state.json does not match its sha256"):
        verify_checkpoint(root / "step-3")
    warnings: list[str] = []
    assert newest_valid_checkpoint(root, warnings.append) == root / "step-1"
    assert len(warnings) == 3 and "step-4" in warnings[0] and "no readable manifest.json" in warnings[2]


def test_same_step_saves_and_killed_saves_leave_a_whole_checkpoint(tmp_path: Path) -> None:
    model, optimizer, scheduler = tiny_training(tmp_path)
    root = tmp_path / "checkpoints"
    save_checkpoint(root, 5, *trained(model, optimizer), scheduler, {}, keep=1)
    save_checkpoint(root, 5, *trained(model, optimizer), scheduler, {}, keep=1)  # the last step is also a save step
    verify_checkpoint(root / "step-5")
    # a kill between moving the old step-5 aside and renaming the new one in, and one mid-write
    (root / "step-5").rename(root / ".old-step-5")
    (root / ".tmp-step-6-999").mkdir()
    (root / ".tmp-step-6-999" / "trainable.safetensors").write_bytes(b"half")
    notes = clean_stale(root)
    assert sorted(p.name for p in root.iterdir()) == ["step-5"] and len(notes) == 2
    verify_checkpoint(root / "step-5")


def test_rotation_never_deletes_the_protected_checkpoint(tmp_path: Path) -> None:
    model, optimizer, scheduler = tiny_training(tmp_path)
    root = tmp_path / "checkpoints"
    first = save_checkpoint(root, 1, *trained(model, optimizer), scheduler, {}, keep=1)
    for step in (2, 3):
        save_checkpoint(root, step, *trained(model, optimizer), scheduler, {}, keep=1, protect=first)
    assert [p.name for p in list_checkpoints(root)] == ["step-1", "step-3"]


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_does_not_run_on_resume(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    config = make_config(train={"max_steps": 2, "save_every_steps": 1})
    result = train(config, quiet=True)
    marker = tmp_path / "pwned"
    for step_dir in list_checkpoints(result.run_dir / "checkpoints"):
        (step_dir / "training_state.pt").write_bytes(pickle.dumps(Payload(marker)))
        manifest = json.loads((step_dir / MANIFEST).read_text())
        assert not any(name.endswith((".pt", ".bin", ".pkl")) for name in manifest["files"])
    resumed = train(config, quiet=True, resume=True)  # reads only safetensors and JSON
    assert resumed.summary["status"] == "finished"
    assert not marker.exists()


def test_the_linter_bans_torch_load_and_save(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\n\nstate = torch.load('x.pt')\ntorch.save(state, 'y.pt')\n")
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"), str(bad)],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stdout.count("TID251") == 2 and "torch.load unpickles" in done.stdout


def test_a_cut_metrics_line_does_not_break_resume(make_config: Callable[..., dict[str, Any]]) -> None:
    config = make_config(train={"max_steps": 4, "save_every_steps": 2})
    from tests.engine.test_resume import interrupt_after_checkpoint

    with pytest.raises(KeyboardInterrupt):
        train(config, quiet=True, callbacks=[interrupt_after_checkpoint(2)])
    run_dir = Path(config["output"]["dir"]) / "t"
    with (run_dir / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 3, "loss": 1.2')  # a kill or a full disk mid-line
    resumed = train(config, quiet=True, resume=True)
    assert [m["step"] for m in resumed.metrics if "loss" in m] == [1, 2, 3, 4]
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        json.loads(line)


def test_resume_from_picks_a_checkpoint(make_config: Callable[..., dict[str, Any]]) -> None:
    config = make_config(train={"max_steps": 4, "save_every_steps": 1, "keep_checkpoints": 4})
    result = train(config, quiet=True)
    chosen = result.run_dir / "checkpoints" / "step-2"
    resumed = train(config, quiet=True, resume_from=chosen)
    assert "resuming from step-2" in (result.run_dir / "train.log").read_text()
    assert [m["step"] for m in resumed.metrics if "loss" in m] == [1, 2, 3, 4]
    assert resumed.summary["eval_loss_after"] == pytest.approx(result.summary["eval_loss_after"], abs=1e-6)


def test_optimizer_state_is_kept_by_parameter_name_and_older_checkpoints_still_load(tmp_path: Path) -> None:
    """Checkpoints name each parameter's optimizer state (a model of another strategy or process count
    maps it by name); a checkpoint written before that (state by index) loads the same; one that names a
    parameter the model lacks is a CheckpointError."""
    from tunesmith.engine.sharding import load_optimizer_state, optimizer_state

    model, optimizer, _ = tiny_training(tmp_path)
    named = optimizer_state(model, optimizer)
    assert sorted(named["state"]) == ["bias", "weight"] and named["param_groups"][0]["params"] == ["weight", "bias"]
    for saved in (named, optimizer.state_dict()):  # the new layout, and an older checkpoint's
        fresh = torch.optim.AdamW(model.parameters(), lr=0.1)
        load_optimizer_state(model, fresh, saved)
        for index in (0, 1):
            for key in ("step", "exp_avg", "exp_avg_sq"):
                assert torch.equal(fresh.state_dict()["state"][index][key], optimizer.state_dict()["state"][index][key])
    path = save_checkpoint(tmp_path / "c", 1, *trained(model, optimizer), scheduler_for(optimizer), {}, keep=1)
    other = torch.nn.Sequential(torch.nn.Linear(4, 3))  # the same shapes under other names
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_checkpoint(path, other, torch.optim.AdamW(other.parameters()), scheduler_for(optimizer))


def scheduler_for(optimizer: Any) -> Any:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def test_a_manifest_that_leaves_out_a_file_is_rejected(tmp_path: Path) -> None:
    model, optimizer, scheduler = tiny_training(tmp_path)
    path = save_checkpoint(tmp_path / "c", 1, *trained(model, optimizer), scheduler, {}, keep=1)
    manifest = json.loads((path / MANIFEST).read_text())
    del manifest["files"]["training_state.json"]
    (path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="its manifest does not list training_state.json"):
        verify_checkpoint(path)


def test_resume_from_another_run_is_refused_and_newer_checkpoints_are_dropped(
    make_config: Callable[..., dict[str, Any]]
) -> None:
    from tunesmith.errors import UserError

    config = make_config(train={"max_steps": 4, "save_every_steps": 1, "keep_checkpoints": 4})
    first = train(config, quiet=True)
    other = train(config, ["output.name=other"], quiet=True)
    with pytest.raises(UserError, match="not a checkpoint of"):
        train(config, quiet=True, resume_from=other.run_dir / "checkpoints" / "step-2")
    train(config, ["train.max_steps=3"], quiet=True, resume_from=first.run_dir / "checkpoints" / "step-2",
          force_resume=True)
    assert [p.name for p in list_checkpoints(first.run_dir / "checkpoints")] == ["step-1", "step-2", "step-3"]
