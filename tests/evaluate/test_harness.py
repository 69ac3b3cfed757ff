"""`tunesmith eval --lm-eval`: EleutherAI's harness scores runs (merged on their base) and plain models
on a local task, offline."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_jsonl
from tunesmith import train
from tunesmith.cli import main

FACTS = [
    ("the sky", "blue"),
    ("grass", "green"),
    ("snow", "white"),
    ("coal", "black"),
    ("blood", "red"),
    ("sand", "yellow"),
]


def write_task(folder: Path) -> None:
    """A two-choice task in the harness's own YAML, reading a local JSONL file."""
    rows = [
        {
            "question": f"What colour is {thing}? Answer:",
            "choices": [colour, FACTS[(i + 1) % 6][1]],
            "answer": 0,
        }
        for i, (thing, colour) in enumerate(FACTS)
    ]
    write_jsonl(folder / "tiny.jsonl", rows)
    (folder / "tiny.yaml").write_text(
        "task: tiny_choice\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {folder / 'tiny.jsonl'}\ntest_split: test\n"
        "output_type: multiple_choice\ndoc_to_text: '{{question}}'\ndoc_to_choice: '{{choices}}'\n"
        "doc_to_target: '{{answer}}'\nmetric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
        "metadata:\n  version: 1.0\n"
    )


def own_accuracy(target: str) -> float:
    """The task scored by hand: Σ log p(choice tokens | question), as the harness encodes the pair."""
    import torch

    from tunesmith.runs.evaluation import load_target, resolve_targets

    [resolved] = resolve_targets([target], None)
    model, tokenizer = load_target(resolved)
    if resolved.run is not None:
        model = resolved.run.method.merge(model)
    model.eval()
    correct = 0
    for i, (thing, colour) in enumerate(FACTS):
        context = f"What colour is {thing}? Answer:"
        scores = []
        for choice in (colour, FACTS[(i + 1) % 6][1]):
            whole = tokenizer(f"{context} {choice}", add_special_tokens=False)["input_ids"]
            start = len(tokenizer(context, add_special_tokens=False)["input_ids"])
            with torch.no_grad():
                logps = torch.log_softmax(model(torch.tensor([whole])).logits[0].float(), -1)
            scores.append(sum(float(logps[t - 1, whole[t]]) for t in range(start, len(whole))))
        correct += scores[0] > scores[1]
    return correct / len(FACTS)


def test_harness_scores_runs_and_models_as_we_do(
    make_config: Callable[..., dict[str, Any]],
    tmp_path: Path,
    tiny_llama: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    write_task(tasks)
    texts = [{"text": f"What colour is {thing}? Answer: {colour}"} for thing, colour in FACTS] * 4
    train_file = write_jsonl(tmp_path / "text.jsonl", texts)
    config = make_config(
        task="causal_lm",
        method={"name": "lora", "r": 8, "alpha": 16},  # merged before the harness sees it
        data={"train": str(train_file), "eval": str(train_file), "format": "text"},
        train={"max_steps": 20, "batch_size": 8, "lr": 2e-2},
    )
    run = train(config, quiet=True).run_dir
    out = tmp_path / "scores.json"
    main(
        [
            "eval",
            str(tiny_llama),
            str(run),
            "--lm-eval",
            "tiny_choice",
            "--lm-eval-include",
            str(tasks),
            "--json",
            str(out),
        ]
    )
    scores = json.loads(out.read_text())["lm_eval"]
    assert set(scores) == {str(tiny_llama), run.name}
    assert scores[run.name]["tiny_choice"]["acc"] == pytest.approx(own_accuracy(str(run)))
    assert scores[str(tiny_llama)]["tiny_choice"]["acc"] == pytest.approx(own_accuracy(str(tiny_llama)))


def test_unknown_harness_task_is_one_line(tiny_llama: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["eval", str(tiny_llama), "--lm-eval", "no_such_task"])
    assert stop.value.code == 2
    assert (
        "unknown task no_such_task; offline, give your task YAML with --lm-eval-include DIR"
        in capsys.readouterr().err
    )
