"""`tunesmith generate`: one output line per input record (input + response + finish_reason + token
counts), answers equal to the engine's, resumable without rewriting a byte, refusal of an OUT made from
another file, several samples per prompt, and labels + probabilities for a classification run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_jsonl
from tunesmith.cli import main

ROWS = [
    {"prompt": "Say something.", "id": 1},
    {"messages": [{"role": "user", "content": "How are you?"}, {"role": "assistant", "content": "ref"}]},
    {"prompt": "Describe the sea.", "id": 3},
    {"prompt": "Pick a number.", "id": 4},
    {"prompt": "Name a city.", "id": 5},
    {"instruction": "Tell me a story.", "output": "reference answer"},
]


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_generate_writes_input_plus_answer_and_resumes(
    tiny_runs: dict[str, Path], tmp_path: Path, capsys: Any
) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / "out.jsonl"
    main(["generate", str(tiny_runs["yes"]), "--data", str(data), "--out", str(out), "--max-new-tokens", "8",
          "--batch-size", "2"])
    records = read(out)
    assert len(records) == len(ROWS)
    for row, record in zip(ROWS, records, strict=True):
        assert {k: record[k] for k in row} == row  # the input, unchanged and in order
        assert record["response"].startswith("Yes")
        assert record["finish_reason"] in ("stop", "length")
        assert record["completion_tokens"] <= 8 and record["prompt_tokens"] > 5
    assert "tokens/s" in capsys.readouterr().out
    # a run killed after two records (and in the middle of the third line) resumes after them
    complete = "".join(line + "\n" for line in out.read_text().splitlines()[:2])
    assert records[-1]["instruction"] == "Tell me a story." and records[-1]["response"].startswith("Yes")
    out.write_text(complete + '{"prompt": "Describe the')
    main(["generate", str(tiny_runs["yes"]), "--data", str(data), "--out", str(out), "--max-new-tokens", "8"])
    again = out.read_text()
    assert again.startswith(complete)
    assert read(out) == records
    assert "4 records written" in capsys.readouterr().out
    main(["generate", str(tiny_runs["yes"]), "--data", str(data), "--out", str(out), "--max-new-tokens", "8"])
    assert out.read_text() == again  # nothing left to do: nothing rewritten
    assert "0 records written" in capsys.readouterr().out


def test_generate_refuses_an_output_of_another_input(tiny_runs: dict[str, Path], tmp_path: Path, capsys: Any) -> None:
    out = write_jsonl(tmp_path / "out.jsonl", [{"prompt": "something else", "response": "x"}])
    before = out.read_bytes()
    data = write_jsonl(tmp_path / "in.jsonl", ROWS)
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", str(tiny_runs["yes"]), "--data", str(data), "--out", str(out)])
    assert exit_info.value.code == 2
    assert f"--out {out}:1 does not answer {data}:1" in capsys.readouterr().err
    assert out.read_bytes() == before
    with pytest.raises(SystemExit):
        main(["generate", str(tiny_runs["yes"]), "--data", str(data), "--out", str(data)])
    assert "is the input file" in capsys.readouterr().err
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "ok"}, {"question": "no prompt field"}])
    with pytest.raises(SystemExit):
        main(["generate", str(tiny_runs["yes"]), "--data", str(bad), "--out", str(tmp_path / "o2.jsonl")])
    assert f"{bad}:2: a record needs a 'prompt' (text) or 'messages' field" in capsys.readouterr().err
    empty = write_jsonl(tmp_path / "empty.jsonl", [{"messages": [{"role": "assistant", "content": "hi"}]}])
    with pytest.raises(SystemExit):
        main(["generate", str(tiny_runs["yes"]), "--data", str(empty), "--out", str(tmp_path / "o3.jsonl")])
    assert f"{empty}:1: field 'messages' has no user turn to answer" in capsys.readouterr().err


def test_generate_keeps_what_it_did_not_write(tiny_runs: dict[str, Path], tmp_path: Path, capsys: Any) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", ROWS[:2])
    foreign = tmp_path / "notes.jsonl"
    foreign.write_text('{"my": "notes"}')  # one line, no newline at the end: not generate's output
    with pytest.raises(SystemExit):
        main(["generate", str(tiny_runs["yes"]), "--data", str(data), "--out", str(foreign)])
    assert foreign.read_text() == '{"my": "notes"}'
    scrap = tmp_path / "scrap.txt"
    scrap.write_text("half a line with no newline")
    with pytest.raises(SystemExit):
        main(["generate", str(tiny_runs["yes"]), "--data", str(data), "--out", str(scrap)])
    assert scrap.read_text() == "half a line with no newline"
    assert "holds data that generate did not write" in capsys.readouterr().err
    out = tmp_path / "out.jsonl"
    main(["generate", str(tiny_runs["yes"]), "--data", str(data), "--out", str(out), "--max-new-tokens", "4"])
    first = out.read_text().splitlines()[0]
    out.write_text(first)  # our own first record, its newline lost: kept, and the rest appended after it
    main(["generate", str(tiny_runs["yes"]), "--data", str(data), "--out", str(out), "--max-new-tokens", "4"])
    assert out.read_text().splitlines()[0] == first and len(read(out)) == 2
    clash = write_jsonl(tmp_path / "clash.jsonl", [{"prompt": "hi", "response": "my reference"}])
    with pytest.raises(SystemExit):
        main(["generate", str(tiny_runs["yes"]), "--data", str(clash), "--out", str(tmp_path / "c.jsonl")])
    assert f"{clash}:1: the record already has a field 'response'" in capsys.readouterr().err


def test_generate_samples_n_per_prompt_reproducibly(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", ROWS[:2])
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.jsonl"
        main(["generate", str(tiny_runs["no"]), "--data", str(data), "--out", str(out), "--n", "3",
              "--temperature", "1.0", "--seed", "5", "--max-new-tokens", "6"])
        outs.append(read(out))
    assert outs[0] == outs[1]
    assert [r["sample"] for r in outs[0]] == [0, 1, 2, 0, 1, 2]


def test_generate_on_a_classification_run_writes_labels_and_probabilities(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    from tests.tasks.test_classification import classification_config
    from tunesmith import train

    run = train(classification_config(make_config, tmp_path), quiet=True)
    rows = [json.loads(line) for line in (tmp_path / "cls-eval.jsonl").read_text().splitlines()]
    out = tmp_path / "labels.jsonl"
    main(["generate", str(run.run_dir), "--data", str(tmp_path / "cls-eval.jsonl"), "--out", str(out)])
    labels = json.loads((run.run_dir / "labels.json").read_text())
    records = read(out)
    assert len(records) == len(rows)
    for row, record in zip(rows, records, strict=True):
        assert {k: record[k] for k in row} == row  # the gold label stays as it was
        assert record["predicted_label"] in labels
        assert set(record["probabilities"]) == set(labels)
        assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert record["predicted_label"] == max(record["probabilities"], key=record["probabilities"].get)
