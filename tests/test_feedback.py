"""`tunesmith feedback`: choices become preference pairs (readable by task dpo), both-bad answers become
thumbs-down records (readable by loss kto), skips and quits write nothing, and a real run with the CLI
collects from a model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import write_jsonl
from tunesmith import train
from tunesmith.feedback.collect import Answer, append_choice, collect, unpaired_path


def fixed_answers(prompt: str) -> tuple[Answer, Answer]:
    return Answer(f"good answer to {prompt}", "run-a"), Answer(f"poor answer to {prompt}", "base")


def scripted(choices: list[str]) -> Callable[[str], str]:
    answers = iter(choices)
    return lambda _question: next(answers)


def test_choices_are_appended_as_pairs_and_unpaired(tmp_path: Path) -> None:
    out = tmp_path / "prefs.jsonl"
    shown: list[str] = []
    counts = collect(
        ["p1", "p2", "p3", "p4", "p5"],
        fixed_answers,
        out,
        ask=scripted(["x", "1", "2", "b", "s", "q"]),
        show=shown.append,
    )
    assert (counts.pairs, counts.both_bad, counts.skipped) == (2, 1, 1)
    pairs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p["prompt"] for p in pairs] == ["p1", "p2"]
    for pair, shown_text in zip(pairs, shown, strict=False):
        first_on_screen = shown_text.split("--- answer 1 ---\n")[1].split("\n")[0]
        # "1" on p1 picks what was shown first, "2" on p2 what was shown second
        assert (pair["chosen"] == first_on_screen) == (pair["prompt"] == "p1")
        assert {pair["chosen_model"], pair["rejected_model"]} == {"run-a", "base"}
    unpaired = [json.loads(line) for line in unpaired_path(out).read_text().splitlines()]
    assert [(u["prompt"], u["label"]) for u in unpaired] == [("p3", False), ("p3", False)]


def test_identical_or_blank_answers_are_skips(tmp_path: Path) -> None:
    """The readers refuse pairs with identical or empty answers, so such a choice writes nothing."""
    out = tmp_path / "prefs.jsonl"
    for first, second in (("same", " same "), ("", "an answer"), ("an answer", "  ")):
        for choice in ("first", "second", "both_bad"):
            assert append_choice(out, "p", Answer(first, "m1"), Answer(second, "m2"), choice) == "skipped"
    assert not out.exists() and not unpaired_path(out).exists()
    assert append_choice(out, "p", Answer("A", "m1"), Answer("B", "m2"), "second", {"annotator": "ann"}) == "pair"
    assert json.loads(out.read_text()) == {"prompt": "p", "chosen": "B", "rejected": "A", "chosen_model": "m2",
                                           "rejected_model": "m1", "annotator": "ann"}


def test_collected_pairs_train_dpo(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "prefs.jsonl"
    collect(
        [f"question {i}" for i in range(8)], fixed_answers, out, ask=scripted(["1"] * 8), show=lambda _t: None
    )
    config = make_config(
        task={"name": "dpo"}, data={"train": str(out), "eval": None, "eval_split": 0.25, "max_length": 128}
    )
    summary = train(config, quiet=True).summary
    assert summary["eval_pref_accuracy_after"] is not None


def test_feedback_cli_with_a_model(tmp_path: Path, tiny_llama: Path) -> None:
    import subprocess
    import sys

    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "Say hi"}, {"prompt": "Name a fruit"}])
    out = tmp_path / "prefs.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunesmith",
            "feedback",
            "--prompts",
            str(prompts),
            "--model",
            str(tiny_llama),
            "--out",
            str(out),
            "--max-new-tokens",
            "6",
        ],
        input="1\n1\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "answer 1" in proc.stdout and "preference pair(s) appended" in proc.stdout
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    import re

    reported = int(re.findall(r"(\d+) preference pair\(s\) appended", proc.stdout)[-1])
    assert len(records) == reported  # identical samples are skipped, every other choice is written
    assert all(r["chosen_model"] == str(tiny_llama) and r["chosen"] != r["rejected"] for r in records)
