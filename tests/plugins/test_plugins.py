"""A package outside tunesmith adds a method (with its own config key), a preference loss, a reward and a
record format through entry points, and they train through the same loop: no tunesmith file is edited.

The plugin is "installed" the way pip leaves a package: the package folder plus a `.dist-info` with its
`entry_points.txt`, on the path of a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import write_jsonl
from tests.plugins import tunesmith_plugin_demo as plugin

PAIRS = [
    {"prompt": f"Question {i}?", "chosen": "A kind, clear answer.", "rejected": "Go away."} for i in range(8)
]


def install(site: Path) -> dict[str, str]:
    shutil.copytree(Path(plugin.__file__).parent, site / "tunesmith_plugin_demo")
    info = site / "tunesmith_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tunesmith-plugin-demo\nVersion: 0.1\n")
    lines = [f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()) for group, points in plugin.ENTRY_POINTS.items()]
    (info / "entry_points.txt").write_text("\n".join(lines))
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), root, os.environ.get("PYTHONPATH", "")])}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=600)


def test_a_plugin_package_adds_components_that_train(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    env = install(tmp_path / "site")
    dpo = make_config(
        task={"name": "dpo", "loss": "squared_hinge", "beta": 0.5},
        method={"name": "norm_tune", "patterns": ["norm"]},
        data={"train": str(write_jsonl(tmp_path / "pairs.jsonl", PAIRS)),
              "eval": str(write_jsonl(tmp_path / "held.jsonl", PAIRS[:2]))},
        train={"max_steps": 6, "lr": 5e-2},
        output={"dir": str(tmp_path / "runs"), "name": "plugin-dpo"},
    )
    qa = make_config(
        method={"name": "norm_tune"},
        data={"train": str(write_jsonl(tmp_path / "qa.jsonl", [{"q": "Hi?", "a": "Hello."}] * 8)), "eval": None,
              "eval_split": 0.25, "format": "qa", "packing": False},
        train={"max_steps": 2},
        output={"dir": str(tmp_path / "runs"), "name": "plugin-qa"},
    )
    (tmp_path / "dpo.yaml").write_text(yaml.safe_dump(dpo))
    (tmp_path / "qa.yaml").write_text(yaml.safe_dump(qa))
    for name in ("dpo", "qa"):
        done = run(env, "-m", "tunesmith", "train", str(tmp_path / f"{name}.yaml"), "--quiet")
        assert done.returncode == 0, done.stderr[-2000:]

    dpo_run = tmp_path / "runs" / "plugin-dpo"
    saved = yaml.safe_load((dpo_run / "config.yaml").read_text())
    assert saved["method"] == {"name": "norm_tune", "patterns": ["norm"]}
    assert saved["task"]["loss"] == "squared_hinge"
    summary = json.loads((dpo_run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["method"] == "norm_tune"
    # only the RMSNorm weights trained: 2 per block + the final norm, hidden size each
    weights = (dpo_run / "final" / plugin.WEIGHTS).stat().st_size
    assert 0 < weights < 10_000 and summary["trainable_params"] < summary["total_params"] / 100
    losses = [m["loss"] for m in map(json.loads, (dpo_run / "metrics.jsonl").read_text().splitlines()) if "loss" in m]
    assert len(losses) == 6 and losses[-1] < losses[0]  # the plugin's loss is what is optimised
    qa_summary = json.loads((tmp_path / "runs" / "plugin-qa" / "summary.json").read_text())
    assert qa_summary["status"] == "finished" and qa_summary["data"]["samples"] > 0

    probe = run(env, "-c", "from tunesmith.rewards import load_function as f; print(f('shouting', 'k')('', 'ABc'))")
    assert probe.stdout.strip() == str(2 / 3), probe.stderr[-2000:]
    docs = run(env, "-m", "tunesmith", "config", "docs")
    assert "### `method.name: norm_tune`" in docs.stdout and "| `method.patterns` |" in docs.stdout

    bad = run(env, "-m", "tunesmith", "train", str(tmp_path / "qa.yaml"), "method.r=4", "--quiet")
    assert bad.returncode == 2
    assert "r not used by method norm_tune (its keys: patterns)" in bad.stderr and "Traceback" not in bad.stderr


def test_a_plugin_that_fails_to_import_is_one_line(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = site / "broken-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[tunesmith.methods]\nbroken = no_such_module:Method\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = run(env, "-m", "tunesmith", "config", "docs")
    assert done.returncode == 2
    assert "plugin no_such_module:Method (entry point 'broken' in tunesmith.methods) failed to load" in done.stderr
    assert "Traceback" not in done.stderr
