"""`tunesmith tune` on the tiny model: a learning-rate search finishes and picks its best trial; best.yaml
retrains to the same metric; a study resumes without repeating trials; a hopeless trial is pruned and
recorded with its step; two processes on one SQLite study run N trials in total; bad spaces are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest
import yaml

from tests.ui.conftest import running_studio
from tunesmith import train
from tunesmith.cli import main
from tunesmith.tune.command import build_search, tune
from tunesmith.tune.search import metric_of, open_study, run_search

pytestmark = pytest.mark.slow
LR_SPACE = {"train.lr": {"type": "float", "low": 1.0e-4, "high": 5.0e-2, "log": True}}


@pytest.fixture
def job(tmp_path: Path, make_config: Callable[..., dict[str, Any]]) -> Callable[..., tuple[Path, Path]]:
    """(config file, space file) of a small search: 8 steps, an evaluation every 2 (for the pruner)."""

    def write(space: dict[str, Any] | None = None, **sections: Any) -> tuple[Path, Path]:
        config = make_config(train={"max_steps": 8, "seed": 0}, eval={"every_steps": 2, "num_samples": 0,
                                                                      "forgetting": False},
                             output={"dir": str(tmp_path / "runs"), "name": "lr"}, **sections)
        config["eval"].setdefault("memorization", {"samples": 0})
        config_path, space_path = tmp_path / "config.yaml", tmp_path / "space.yaml"
        config_path.write_text(yaml.safe_dump(config))
        space_path.write_text(yaml.safe_dump(space or LR_SPACE))
        return config_path, space_path

    return write


def test_a_learning_rate_search_picks_its_best_trial_and_best_yaml_retrains_to_it(job: Any, tmp_path: Path) -> None:
    config, space = job()
    study = tune(build_search(config, space, trials=4, pruner="none"))
    folder = tmp_path / "runs" / "lr"
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    values = [t.value for t in trials]
    assert len(set(values)) == 4 and study.best_value == min(values)
    for t in trials:  # each trial is a normal run: its own folder, summary and registry row
        summary = json.loads((folder / f"trial-{t.number}" / "summary.json").read_text())
        assert metric_of(summary, "eval_loss") == pytest.approx(t.value)
    rows = json.loads(subprocess.run([sys.executable, "-m", "tunesmith", "runs", "--root", str(folder), "--json"],
                                     capture_output=True, text=True, check=True, env=_env()).stdout)
    assert sorted(r["name"] for r in rows) == [f"trial-{i}" for i in range(4)]
    report = (folder / "report.html").read_text()
    assert "best eval_loss so far" in report and "parallel coordinates" in report and "trial-3" in report
    best = yaml.safe_load((folder / "best.yaml").read_text())
    assert best["train"]["lr"] == pytest.approx(study.best_params["train.lr"])
    with running_studio(tmp_path / "runs", tmp_path) as (url, _):  # the studio lists the study and its report
        listing = httpx.get(f"{url}/").text
        assert 'href="/studies/lr"' in listing and 'href="/runs/lr/trial-0"' in listing
        assert "parallel coordinates" in httpx.get(f"{url}/studies/lr").text
    again = train(folder / "best.yaml", quiet=True)
    assert again.run_dir == tmp_path / "runs" / "lr-best"
    assert metric_of(again.summary, "eval_loss") == pytest.approx(study.best_value, rel=1e-6)


def test_an_interrupted_study_resumes_without_repeating_trials(job: Any, tmp_path: Path) -> None:
    config, space = job()
    first = tune(build_search(config, space, trials=2, pruner="none"))
    done = {t.number: t.params for t in first.get_trials()}
    second = tune(build_search(config, space, trials=4, pruner="none"))  # the same study, asked for 4 in all
    trials = second.get_trials()
    assert len(trials) == 4 and {t.number: t.params for t in trials[:2]} == done
    assert sorted(p.name for p in (tmp_path / "runs" / "lr").glob("trial-*")) == [f"trial-{i}" for i in range(4)]


def test_a_hopeless_trial_is_pruned_at_its_step(job: Any) -> None:
    config, space = job()
    search = build_search(config, space, trials=3, pruner="median")
    study = open_study(search)
    for lr in (2e-2, 1e-2, 1e-9):  # two that learn, then one that cannot
        study.enqueue_trial({"train.lr": lr})
    run_search(search)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    pruned = trials[2]
    assert pruned.user_attrs["pruned_at_step"] == 2
    summary = json.loads((search.folder / "trial-2" / "summary.json").read_text())
    assert summary["steps"] == 2 and "pruned by the search" in summary["stop_reason"]


def test_trials_that_do_not_fit_are_skipped_before_they_start(job: Any, tmp_path: Path) -> None:
    config, space = job()
    study = tune(build_search(config, space, trials=2, memory_gb=0.05))  # 50 MB: no trial fits
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["PRUNED", "PRUNED"]
    assert all(t.user_attrs["skipped"].startswith("does not fit: estimated") for t in trials)
    assert not any((tmp_path / "runs" / "lr").glob("trial-*"))  # nothing was trained
    assert "skipped" in (tmp_path / "runs" / "lr" / "report.html").read_text()


def test_processes_share_one_sqlite_study(job: Any, tmp_path: Path) -> None:
    config, space = job()
    command = [sys.executable, "-m", "tunesmith", "tune", str(config), "--space", str(space), "--trials", "4",
               "--pruner", "none"]
    workers = [subprocess.Popen(command + extra, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=_env()) for extra in ([], ["--jobs", "2"])]  # 3 searching processes in all
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    study = optuna.load_study(study_name="lr", storage=f"sqlite:///{tmp_path / 'runs' / 'lr' / 'study.sqlite'}")
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    params = [t.params["train.lr"] for t in trials]
    assert len(set(params)) == 4  # no trial ran twice
    assert sorted(p.name for p in (tmp_path / "runs" / "lr").glob("trial-*")) == [f"trial-{i}" for i in range(4)]


def _env() -> dict[str, str]:
    return {**os.environ, "TUNESMITH_ALLOCATOR": "system"}


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        ({"train.lrr": {"type": "float", "low": 1e-4, "high": 1e-2}}, "train.lrr"),
        ({"train.lr": {"type": "float", "low": 1e-2, "high": 1e-4}}, "train.lr: low 0.01 > high 0.0001"),
        ({"method.name": {"type": "categorical", "choices": []}}, "method.name: categorical needs a non-empty list"),
        ({"train.lr": {"type": "normal", "low": 0, "high": 1}}, "train.lr: type 'normal'"),
        ({"train.lr": {"type": "float", "low": 0.0, "high": 1e-2, "log": True}}, "a log scale needs low > 0"),
        ({"method.r": {"type": "int", "low": 4, "high": 8, "when": {"method.nam": "lora"}}}, "when method.nam"),
        ({"train.batch_size": {"type": "int", "low": 0, "high": 8}}, "train.batch_size=0 does not make a valid config"),
    ],
)
def test_bad_spaces_are_one_line(job: Any, space: dict[str, Any], expected: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    config, space_path = job(space)
    with pytest.raises(SystemExit) as exit_info:
        main(["tune", str(config), "--space", str(space_path), "--trials", "2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not (config.parent / "runs" / "lr" / "trial-0").exists()  # nothing ran
