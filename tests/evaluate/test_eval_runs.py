"""`tunesmith eval`: several runs on one base, each matching the eval loss its own run reported."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tunesmith import train
from tunesmith.cli import main


@pytest.mark.parametrize("method", [{"name": "lora", "r": 4, "alpha": 8}, {"name": "full"}])
def test_eval_matches_training_and_base(
    method: dict[str, Any], make_config: Callable[..., dict[str, Any]], tmp_path: Path, capsys: Any
) -> None:
    runs = []
    for seed, name in ((0, "first"), (1, "second")):
        config = make_config(method=method, train={"seed": seed, "lr": 5e-3}, output={"name": name})
        runs.append(train(config, quiet=True))
    eval_file = tmp_path / "eval.jsonl"  # the runs' own eval data
    out = tmp_path / "eval.json"
    main(["eval", str(runs[0].run_dir), str(runs[1].run_dir), "--data", str(eval_file), "--json", str(out)])
    results = json.loads(out.read_text())["results"]
    assert list(results) == ["base", "first", "second"]
    for run, name in zip(runs, ["first", "second"], strict=True):
        assert results[name]["eval_loss"] == pytest.approx(run.summary["eval_loss_after"], rel=1e-5)
        assert results["base"]["eval_loss"] == pytest.approx(run.summary["eval_loss_before"], rel=1e-5)
    assert results["first"]["eval_loss"] != results["second"]["eval_loss"]
    printed = capsys.readouterr().out
    assert "perplexity" in printed and "second" in printed


def test_eval_missing_data_file(make_config: Callable[..., dict[str, Any]], tmp_path: Path, capsys: Any) -> None:
    run = train(make_config(), quiet=True)
    with pytest.raises(SystemExit) as info:
        main(["eval", str(run.run_dir), "--data", str(tmp_path / "nope.jsonl")])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: --data {tmp_path / 'nope.jsonl'} does not exist"
