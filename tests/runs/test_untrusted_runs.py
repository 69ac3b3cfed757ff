"""A run folder, checkpoint or model folder from someone else is data, not code: reading a run never
imports the modules its config names nor enables remote code unless the command line says so, pickle
weights are refused unless allowed, and trust_remote_code on a hub model needs a pinned revision."""

from __future__ import annotations

import pickle
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tunesmith.cli import main
from tunesmith.errors import UserError


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, (f"touch {self.marker}",))


def hostile_run(tiny_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A copy of a real run whose config names a reward module that leaves a marker when imported."""
    run = tmp_path / "received-run"
    shutil.copytree(tiny_runs["yes"], run)
    marker = tmp_path / "imported"
    module_dir = tmp_path / "modules"
    module_dir.mkdir()
    (module_dir / "evil_rewards.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\ndef score(prompt, completion):\n    return 1.0\n"
    )
    monkeypatch.syspath_prepend(str(module_dir))
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["task"] = {"name": "grpo", "reward_functions": [{"function": "evil_rewards:score"}]}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return run, marker


def test_reading_a_run_never_imports_what_its_config_names(
    tiny_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    run, marker = hostile_run(tiny_runs, tmp_path, monkeypatch)
    main(["export", str(run), "--format", "adapter", "--out", str(tmp_path / "adapter")])
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "Say something."}\n')
    main(["generate", str(run), "--data", str(prompts), "--out", str(tmp_path / "o.jsonl"), "--max-new-tokens", "2"])
    with pytest.raises(SystemExit):
        main(["eval", str(run), "--data", str(prompts)])
    assert "pass tunesmith --allow-imports if you trust the run folder" in capsys.readouterr().err
    assert not marker.exists()
    sys.modules.pop("evil_rewards", None)
    from tunesmith.runs.tuned import TRUST, read_run

    try:
        main(["--allow-imports", "runs", "--root", str(tmp_path / "none")])
        assert TRUST.allow_imports
        from tunesmith.rewards import load_reward_source

        load_reward_source(read_run(run).config.task)
        assert marker.exists()  # only with the flag
    finally:
        TRUST.allow_imports = False
        sys.modules.pop("evil_rewards", None)


def test_remote_code_of_a_run_needs_the_flag(tiny_runs: dict[str, Path], tmp_path: Path, capsys: Any) -> None:
    run = tmp_path / "remote-run"
    shutil.copytree(tiny_runs["yes"], run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"]["trust_remote_code"] = True
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as info:
        main(["export", str(run), "--out", str(tmp_path / "x")])
    assert info.value.code == 2
    assert "needs model.trust_remote_code" in capsys.readouterr().err
    from tunesmith.runs.tuned import TRUST, read_run

    TRUST.trust_remote_code = True
    try:
        assert read_run(run).config.model.trust_remote_code
    finally:
        TRUST.trust_remote_code = False


def test_pickle_weights_are_refused_and_never_run(tiny_llama: Path, tmp_path: Path) -> None:
    from tunesmith.config import ModelConfig
    from tunesmith.models.load import resolve_model

    folder = tmp_path / "pickled-model"
    folder.mkdir()
    shutil.copy(tiny_llama / "config.json", folder / "config.json")
    marker = tmp_path / "unpickled"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(UserError, match="pickle files \\(pytorch_model.bin\\), which can run code"):
        resolve_model(ModelConfig(path=str(folder)))
    assert not marker.exists()
    assert resolve_model(ModelConfig(path=str(folder), allow_pickle_weights=True)).folder == folder


def test_remote_code_from_a_hub_model_needs_a_pinned_revision() -> None:
    from tunesmith.config import load_config

    with pytest.raises(UserError, match="needs model.revision"):
        load_config({"model": {"path": "someone/model", "trust_remote_code": True}, "data": {"train": "x"}})
    pinned = load_config({"model": {"path": "someone/model", "trust_remote_code": True, "revision": "abc123"},
                          "data": {"train": "x"}})
    assert pinned.model.revision == "abc123"


def test_a_run_config_cannot_allow_pickle_weights_by_itself(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    from tunesmith.runs.tuned import read_run

    run = tmp_path / "pickle-run"
    shutil.copytree(tiny_runs["yes"], run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"]["allow_pickle_weights"] = True
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(UserError, match="pass tunesmith --allow-pickle-weights"):
        read_run(run)
