"""Nothing tunesmith did not create is deleted or overwritten: run names stay inside output.dir,
--overwrite replaces only a tunesmith run (or an empty folder) and says so, exports and data fixes never
write over what they read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_jsonl
from tunesmith import train
from tunesmith.cli import main
from tunesmith.errors import UserError


@pytest.mark.parametrize("name", ["../mydata", "a/../../x", "/tmp/elsewhere", "", ".", "..", "~user", " x"])
def test_run_names_are_one_plain_folder(make_config: Callable[..., dict[str, Any]], tmp_path: Path, name: str) -> None:
    precious = tmp_path / "mydata"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="output.name"):
        train(make_config(output={"name": name}), quiet=True, overwrite=True)
    assert (precious / "keep.txt").read_text() == "mine"


def test_overwrite_replaces_only_a_tunesmith_run(make_config: Callable[..., dict[str, Any]]) -> None:
    config = make_config(train={"max_steps": 1})
    runs = Path(config["output"]["dir"])
    foreign = runs / "t"
    foreign.mkdir(parents=True)
    (foreign / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match="is not a tunesmith run \\(no run config.yaml\\); it is left alone"):
        train(config, quiet=True, overwrite=True)
    assert (foreign / "thesis.tex").read_text() == "years of work"
    (foreign / "thesis.tex").unlink()
    first = train(config, quiet=True)  # an empty folder may be used
    again = train(config, quiet=True, overwrite=True)
    assert again.run_dir == first.run_dir
    assert f"removed the earlier run folder {first.run_dir}" in (again.run_dir / "train.log").read_text()


def test_data_fix_never_writes_over_its_input(tmp_path: Path, capsys: Any) -> None:
    data = write_jsonl(tmp_path / "train.removed.jsonl", [{"prompt": "a", "completion": "b"}] * 3)
    before = data.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "check", str(data), "--fix", str(tmp_path / "train.jsonl"),
              "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html")])
    assert exit_info.value.code == 2
    assert "would be the input file; the checker never modifies its input" in capsys.readouterr().err
    assert data.read_bytes() == before


def test_a_config_yaml_of_another_tool_is_not_a_run(make_config: Callable[..., dict[str, Any]]) -> None:
    config = make_config(train={"max_steps": 1})
    other = Path(config["output"]["dir"]) / "t"
    other.mkdir(parents=True)
    (other / "config.yaml").write_text("app: my-service\nreplicas: 3\n")
    (other / "secrets.env").write_text("keep")
    with pytest.raises(UserError, match="is not a tunesmith run"):
        train(config, quiet=True, overwrite=True)
    assert (other / "secrets.env").read_text() == "keep"
