from pathlib import Path

import pytest

from tunesmith.config import RunConfig, dump_config, load_config
from tunesmith.errors import UserError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("{}\n")
    cfg = load_config(
        write(tmp_path, "data: {train: train.jsonl}\n"),
        ["train.lr=1e-3", "method.target_modules=[q_proj, v_proj]"],
    )
    assert cfg.train.lr == 1e-3
    assert cfg.method.target_modules == ["q_proj", "v_proj"]
    assert cfg.data.train == str(tmp_path / "train.jsonl")  # relative to the config file
    assert cfg.method.name == "lora" and cfg.data.packing is True and cfg.task.name == "instruction"


def test_unknown_key_names_it_and_suggests(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        load_config(write(tmp_path, "data: {train: x.jsonl}\ntrain: {learning_rate: 0.1, max_step: 3}\n"))
    assert "unknown config key train.max_step; did you mean train.max_steps?" in str(err.value)
    assert "train.learning_rate" in str(err.value)


def test_unknown_override_key_suggests(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"unknown config key method\.alpah; did you mean method\.alpha\?"):
        load_config(write(tmp_path, "data: {train: x.jsonl}\n"), ["method.alpah=4"])
    with pytest.raises(UserError, match=r"unknown config key method\.rank \(valid here: name, r, alpha"):
        load_config(write(tmp_path, "data: {train: x.jsonl}\n"), ["method.rank=4"])


def test_wrong_type_names_full_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"config key train\.batch_size: .*'eight'"):
        load_config(write(tmp_path, "data: {train: x.jsonl}\ntrain: {batch_size: eight}\n"))


def test_source_list_field_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"data\.train\.0\.weight"):
        load_config({"data": {"train": [{"path": "a.jsonl", "weight": -1}]}})


def test_unknown_format_lists_known() -> None:
    with pytest.raises(
        UserError,
        match="known: auto, alpaca, classification, kto, messages, preference, prompt, prompt_completion, sharegpt, text",
    ):
        load_config({"data": {"train": "a.jsonl", "format": "alpacca"}})


def test_cross_field_problems_reported_together() -> None:
    with pytest.raises(UserError) as err:
        load_config(
            {"data": {"train": "a", "eval": "b", "eval_split": 0.1}, "train": {"max_steps": 3, "epochs": 1}}
        )
    assert "data.eval and data.eval_split" in str(err.value) and "train.max_steps and train.epochs" in str(
        err.value
    )


def test_dump_round_trips() -> None:
    cfg = load_config({"data": {"train": "a.jsonl"}, "method": {"r": 4}})
    again = load_config(__import__("yaml").safe_load(dump_config(cfg)))
    assert again == cfg and isinstance(again, RunConfig)


def test_config_show_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tunesmith.cli import main

    main(["config", "show", str(write(tmp_path, "data: {train: x.jsonl}\n")), "method.r=4"])
    out = capsys.readouterr().out
    assert "r: 4" in out and "max_length: 512" in out and "schedule: cosine" in out
