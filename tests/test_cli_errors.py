"""Bad input: exit status 2, one plain line naming the problem, nothing written into an existing run."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import write_jsonl
from tunesmith.cli import main


@pytest.fixture
def existing_run(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "t"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("model: {path: earlier}\ndata: {train: earlier.jsonl}\n")  # an earlier run
    (run / "precious.txt").write_text("user's earlier run")
    return run


def run_cli(config: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(path), "--overwrite", "--quiet", *extra])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err
    return err


def data_with(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


CASES: dict[str, tuple[Callable[[Path], dict[str, Any]], str]] = {
    "missing data file": (
        lambda t: {"data": {"train": str(t / "nope.jsonl")}},
        r"data file .*nope\.jsonl does not exist",
    ),
    "empty dataset": (
        lambda t: {"data": {"train": data_with(t, "e.jsonl", "\n\n")}},
        r"e\.jsonl: the dataset is empty",
    ),
    "malformed line": (
        lambda t: {
            "data": {"train": data_with(t, "m.jsonl", '{"prompt": "a", "completion": "b"}\n{"prompt": \n')}
        },
        r"m\.jsonl:2: malformed JSON line",
    ),
    "missing field": (
        lambda t: {
            "data": {
                "train": str(
                    write_jsonl(t / "f.jsonl", [{"prompt": "a", "completion": "b"}, {"prompt": "c"}])
                )
            }
        },
        r"f\.jsonl:2: record has no field 'completion'",
    ),
    "no assistant turn": (
        lambda t: {
            "data": {
                "train": str(write_jsonl(t / "c.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}]))
            }
        },
        r"c\.jsonl:1: conversation has no assistant turn",
    ),
    "too long, truncation off": (
        lambda t: {
            "data": {
                "train": str(write_jsonl(t / "l.jsonl", [{"prompt": "word " * 300, "completion": "ok"}] * 3)),
                "truncation": "error",
                "max_length": 64,
            }
        },
        r"l\.jsonl:1: sample has \d+ tokens, more than data\.max_length=64",
    ),
    "unknown config key": (
        lambda t: {"train": {"lerning_rate": 1}},
        r"unknown config key train\.lerning_rate",
    ),
    "model path missing": (
        lambda t: {"model": {"path": str(t / "no-model")}},
        r"model\.path .*no-model does not exist",
    ),
    "gguf not gguf": (
        lambda t: {"model": {"path": data_with(t, "fake.gguf", "this is not a model")}},
        r"fake\.gguf: not a GGUF file",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_one_line_exit_2_nothing_lost(
    case: str,
    make_config: Callable[..., dict[str, Any]],
    tmp_path: Path,
    existing_run: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    build, pattern = CASES[case]
    config = make_config(**build(tmp_path))
    err = run_cli(config, tmp_path, capsys)
    assert __import__("re").search(pattern, err), err
    assert sorted(p.name for p in existing_run.iterdir()) == ["config.yaml", "precious.txt"]


def test_debug_shows_traceback(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    from tunesmith.errors import UserError

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(make_config(model={"path": str(tmp_path / "gone")})))
    with pytest.raises(UserError):
        main(["--debug", "train", str(path)])


def test_real_process_exit_status(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("data: {train: x.jsonl}\nmethod: {nam: lora}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "tunesmith", "train", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: unknown config key method.nam; did you mean method.name? "
        "(valid here: name, r, alpha, dropout, target_modules, use_rslora, loraplus_lr_ratio, init, modules_to_save)"
    ]


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["train", "--help"],
        ["export", "--help"],
        ["config", "show", "--help"],
        ["eval", "--help"],
        ["feedback", "--help"],
        ["compare", "--help"],
    ],
)
def test_every_command_has_help_with_example(command: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "tunesmith", *command], capture_output=True, text=True)
    assert proc.returncode == 0 and "Example: tunesmith" in proc.stdout


def test_unknown_option_is_one_usage_error(tmp_path: Path) -> None:
    """A mistyped option is click's usage message and status 2, not a traceback (typer carries its own click)."""
    proc = subprocess.run(
        [sys.executable, "-m", "tunesmith", "train", str(tmp_path / "c.yaml"), "--sett", "x"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "No such option: --sett" in proc.stderr
