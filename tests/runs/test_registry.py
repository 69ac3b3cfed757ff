"""The run registry: runs are listed with their status and final metrics, a killed run is marked on the
next listing, and a damaged or locked registry gives one line and is never rewritten."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tunesmith import train
from tunesmith.cli import main
from tunesmith.runs import registry as registry_module
from tunesmith.runs.registry import REGISTRY_FILE, RunRegistry


def runs_json(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    main(["runs", "--root", str(root), "--json", *extra])
    out = capsys.readouterr().out
    return json.loads(out[out.index("[") :])  # type: ignore[no-any-return]


def start_row(registry: RunRegistry, path: Path) -> int:
    return registry.start(
        path,
        path.name,
        config_hash="c",
        data_fingerprint="d",
        model="m",
        method="lora",
        task="t",
        resume=False,
    )


def launch(config: dict[str, Any]) -> subprocess.Popen[bytes]:
    """A real training process (the tests stop it from outside)."""
    script = f"from tunesmith import train; train({config!r}, quiet=True)"
    return subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def test_a_finished_run_is_listed_with_its_metrics(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = train(make_config(), quiet=True)
    root = tmp_path / "runs"
    [run] = runs_json(root, capsys)
    assert {k: run[k] for k in ("id", "name", "status", "path")} == {
        "id": result.summary["registry_id"],
        "name": "t",
        "status": "finished",
        "path": str(result.run_dir.resolve()),
    }
    assert run["metrics"]["eval_loss_after"] == pytest.approx(result.summary["eval_loss_after"])
    assert run["method"] == "lora" and run["task"] == "instruction" and len(run["data_fingerprint"]) == 16
    assert run["ended_at"] >= run["started_at"]
    # the same setup under another name has the same config hash; other data → another fingerprint
    train(make_config(output={"name": "u"}, train={"max_steps": 1}), quiet=True)
    first, second = runs_json(root, capsys)
    assert first["data_fingerprint"] == second["data_fingerprint"]
    assert first["config_hash"] != second["config_hash"]  # max_steps differs
    main(["runs", "show", "u", "--root", str(root), "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == second["id"] and shown["metrics"]["steps"] == 1


def test_a_killed_run_is_marked_interrupted(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = make_config(train={"max_steps": 100_000, "lr": 1e-4})
    proc = launch(config)
    registry = RunRegistry(tmp_path / "runs")
    deadline = time.time() + 120
    while time.time() < deadline and not (registry.path.exists() and registry.list()):
        time.sleep(0.5)
    assert [r["status"] for r in registry.list()] == ["running"]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    [run] = registry.list()
    assert run["status"] == "interrupted" and "killed or crashed" in run["note"]


def test_a_silent_run_on_another_host_goes_stale(tmp_path: Path) -> None:
    registry = RunRegistry(tmp_path)
    run_id = start_row(registry, tmp_path / "r")
    with sqlite3.connect(registry.path) as db:
        db.execute("UPDATE runs SET host='elsewhere', heartbeat_at=? WHERE id=?", (time.time() - 60, run_id))
    assert registry.list()[0]["status"] == "running"  # 60 s without a heartbeat: still within the limit
    with sqlite3.connect(registry.path) as db:
        db.execute("UPDATE runs SET heartbeat_at=? WHERE id=?", (time.time() - 600, run_id))
    assert registry.list()[0]["status"] == "interrupted"


def test_sigterm_ends_the_run_as_interrupted(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = make_config(train={"max_steps": 100_000, "lr": 1e-4})
    proc = launch(config)
    metrics = tmp_path / "runs" / "t" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    [run] = RunRegistry(tmp_path / "runs").list()
    assert run["status"] == "interrupted" and "SIGTERM" in run["note"]
    assert json.loads((tmp_path / "runs" / "t" / "summary.json").read_text())["status"] == "interrupted"


def test_a_damaged_registry_is_one_line_and_left_alone(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    damaged = root / REGISTRY_FILE
    damaged.write_bytes(b"this is not a database" * 100)
    before = damaged.read_bytes()
    with pytest.raises(SystemExit) as stop:
        main(["runs", "--root", str(root)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is damaged" in err and str(damaged) in err and "--rebuild" in err
    result = train(make_config(), quiet=False)  # training goes on, says why the row is missing
    assert result.summary["status"] == "finished" and result.summary["registry_id"] is None
    assert "the run goes on without its registry row" in (result.run_dir / "train.log").read_text()
    assert damaged.read_bytes() == before
    damaged.rename(root / "registry.damaged")
    main(["runs", "--root", str(root), "--rebuild"])
    [run] = runs_json(root, capsys)
    assert run["name"] == "t" and run["status"] == "finished" and "eval_loss_after" in run["metrics"]


def test_a_locked_registry_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tunesmith.errors import UserError

    registry = RunRegistry(tmp_path)
    registry.list()  # create it
    monkeypatch.setattr(registry_module, "LOCK_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(registry.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a write
    try:
        main(["runs", "--root", str(tmp_path), "--json"])  # WAL: reading is not blocked
        assert json.loads(capsys.readouterr().out) == []
        with pytest.raises(UserError, match=r"registry .* is locked by another process .*try again"):
            start_row(registry, tmp_path / "r")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [r["name"] for r in registry.list()] == []  # the failed write left nothing half-done


def test_unknown_run_names_recent_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start_row(RunRegistry(tmp_path), tmp_path / "a")
    with pytest.raises(SystemExit):
        main(["runs", "show", "nope", "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert "no run 'nope'" in err and "recent runs: 1 (a)" in err
