"""`tunesmith eval` / `compare`: metrics equal what the runs measured, several runs on one base,
the JSON contract of each task, and the examples where base and tuned differ."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_jsonl
from tests.tasks.test_classification import classification_config
from tunesmith import train
from tunesmith.cli import main


@pytest.mark.parametrize("method", [{"name": "lora", "r": 4, "alpha": 8}, {"name": "full"}])
def test_eval_matches_training_and_base(
    method: dict[str, Any],
    make_config: Callable[..., dict[str, Any]],
    tmp_path: Path,
    tiny_llama: Path,
    capsys: Any,
) -> None:
    runs = []
    for seed, name in ((0, "first"), (1, "second")):
        config = make_config(method=method, train={"seed": seed, "lr": 5e-3}, output={"name": name})
        runs.append(train(config, quiet=True))
    out = tmp_path / "eval.json"
    targets = [str(tiny_llama), str(runs[0].run_dir), str(runs[1].run_dir)]
    main(["eval", *targets, "--data", str(tmp_path / "eval.jsonl"), "--json", str(out)])
    results = json.loads(out.read_text())["results"]
    assert list(results) == [str(tiny_llama), "first", "second"]
    for run, name in zip(runs, ["first", "second"], strict=True):
        assert results[name]["eval_loss"] == pytest.approx(run.summary["eval_loss_after"], rel=1e-5)
    assert results[str(tiny_llama)]["eval_loss"] == pytest.approx(
        runs[0].summary["eval_loss_before"], rel=1e-5
    )
    assert results["first"]["eval_loss"] != results["second"]["eval_loss"]
    assert "perplexity" in capsys.readouterr().out


def test_eval_classification_json_contract(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    result = train(classification_config(make_config, tmp_path), quiet=True)
    out = tmp_path / "metrics.json"
    main(
        [
            "eval",
            str(result.run_dir),
            "--data",
            str(tmp_path / "cls-eval.jsonl"),
            "--task",
            "classification",
            "--json",
            str(out),
        ]
    )
    metrics = json.loads(out.read_text())
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= set(metrics)
    assert metrics["accuracy"] == pytest.approx(result.summary["eval_after"]["accuracy"])
    assert metrics["confusion_matrix"] == result.summary["eval_after"]["confusion_matrix"]
    assert len(metrics["examples"]) == 15 and {"input", "reference", "output"} <= set(metrics["examples"][0])


def test_compare_generation(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path, tiny_llama: Path, capsys: Any
) -> None:
    config = make_config(task="generation", train={"max_steps": 20, "lr": 2e-2}, eval={"max_new_tokens": 8})
    result = train(config, quiet=True)
    out = tmp_path / "compare.json"
    main(
        [
            "compare",
            str(tiny_llama),
            str(result.run_dir),
            "--data",
            str(tmp_path / "eval.jsonl"),
            "--json",
            str(out),
        ]
    )
    report = json.loads(out.read_text())
    for side in ("base", "tuned"):
        assert {"rouge1", "rouge2", "rougeL", "exact_match", "json_valid"} <= set(report[side])
    assert report["tuned"]["rougeL"] == pytest.approx(result.summary["eval_after"]["rougeL"])
    assert report["base"]["rougeL"] == pytest.approx(result.summary["eval_before"]["rougeL"])
    printed = capsys.readouterr().out
    assert "change" in printed and "rougeL" in printed
    if report["differing_examples"]:
        assert (
            "example 1" in printed
            and report["differing_examples"][0]["base"] != report["differing_examples"][0]["tuned"]
        )


def test_eval_missing_data_file(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path, capsys: Any
) -> None:
    run = train(make_config(), quiet=True)
    with pytest.raises(SystemExit) as info:
        main(["eval", str(run.run_dir), "--data", str(tmp_path / "nope.jsonl")])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: --data {tmp_path / 'nope.jsonl'} does not exist"


def test_generation_refuses_an_empty_target(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    from tunesmith.errors import UserError

    rows = [
        {"prompt": "Summarise: a long clause", "completion": "A summary."},
        {"prompt": "Summarise: b", "completion": " "},
    ]
    config = make_config(task="generation", data={"train": str(write_jsonl(tmp_path / "sum.jsonl", rows))})
    with pytest.raises(UserError, match=r"sum.jsonl:2: the target \(the answer to generate\) is empty"):
        train(config, quiet=True)


def test_bias_probe_base_vs_tuned(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path, capsys: Any
) -> None:
    run = train(make_config(train={"max_steps": 4, "lr": 2e-2}), quiet=True)
    out = tmp_path / "bias.json"
    main(["eval", str(run.run_dir), "--bias", "--json", str(out)])
    report = json.loads(out.read_text())["bias"]["t"]
    assert set(report["base"]) == {"gender", "religion", "ethnicity", "age"}
    assert all(gap >= 0 for gap in [*report["base"].values(), *report["tuned"].values()])
    assert report["base"] != report["tuned"]  # training moved the model
    assert report["widened"] == bool(report["widened_groups"])
    assert "widened groups" in capsys.readouterr().out


def test_bias_pairs_file_errors(tmp_path: Path) -> None:
    from tunesmith.errors import UserError
    from tunesmith.evaluate.bias import load_pairs

    bad = tmp_path / "pairs.jsonl"
    bad.write_text(json.dumps({"group": "g", "template": "no placeholder", "a": "x", "b": "y"}) + "\n")
    with pytest.raises(
        UserError, match=r"pairs.jsonl:1: a bias pair needs group, template \(with \{term\}\), a and b"
    ):
        load_pairs(bad)
