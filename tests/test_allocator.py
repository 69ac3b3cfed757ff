"""The heavy commands re-execute under tcmalloc when it is installed (tunesmith/allocator.py), and the
estimate says which allocator its memory figures are for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tunesmith import allocator


def test_the_preload_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = tmp_path / "libtcmalloc_minimal.so.4"
    library.write_bytes(b"")
    monkeypatch.setattr(allocator, "LIBRARY_DIRS", (str(tmp_path),))
    env = allocator.tcmalloc_env({"PATH": "/bin", "LD_PRELOAD": "/other.so"})
    assert env is not None
    assert env["LD_PRELOAD"] == f"{library} /other.so" and env["PATH"] == "/bin"
    assert env["TUNESMITH_ALLOCATOR"] == "tcmalloc" and int(env["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"]) >= 1 << 40
    assert allocator.tcmalloc_env({"TUNESMITH_ALLOCATOR": "system"}) is None  # the user's choice
    assert allocator.tcmalloc_env(env) is None  # already under it: never twice
    monkeypatch.setattr(allocator, "LIBRARY_DIRS", (str(tmp_path / "none"),))
    assert allocator.tcmalloc_env({}) is None  # not installed: nothing changes


def test_light_commands_are_not_reexecuted(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(os, "execve", lambda *a: calls.append(a))
    monkeypatch.setattr(allocator, "tcmalloc_env", lambda env: {"LD_PRELOAD": "x"})
    allocator.reexec_with_tcmalloc(["data", "check", "x.jsonl"])
    allocator.reexec_with_tcmalloc(["--help"])
    assert not calls
    allocator.reexec_with_tcmalloc(["train", "c.yaml", "--quiet"])
    assert calls and calls[0][1][1:] == ["-m", "tunesmith", "train", "c.yaml", "--quiet"]


def test_the_cli_runs_under_tcmalloc_unless_told_not_to(make_config: Callable[..., Any], tmp_path: Path) -> None:
    assert allocator.find_tcmalloc() is not None, "libtcmalloc-minimal4 is missing: `make dev` installs it"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(make_config()))
    seen = {}
    for choice in ("", "system"):
        env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "TUNESMITH_ALLOCATOR")}
        if choice:
            env["TUNESMITH_ALLOCATOR"] = choice
        out = tmp_path / f"estimate-{choice or 'default'}.json"
        proc = subprocess.run([sys.executable, "-m", "tunesmith", "estimate", str(path), "--json", str(out)],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        assert "tcmalloc: large alloc" not in proc.stderr
        seen[choice] = json.loads(out.read_text())["allocator"]
    assert seen == {"": "tcmalloc", "system": "libc"}
