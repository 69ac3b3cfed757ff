"""Every config key does something. Statically: each key of every section (built-in components included) is
read somewhere in tunesmith's code besides its definition. Behaviourally, for the keys that were once dead:
changing the value changes what is trained or written."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tests.conftest import CHATS, write_jsonl
from tunesmith import train
from tunesmith.config import RunConfig, section_classes
from tunesmith.sections import Section

SRC = Path(__file__).resolve().parents[1] / "src" / "tunesmith"
# read by their section's own validators or by pydantic (not as attributes elsewhere)
READ_BY_VALIDATION = {"name"}


def leaf_keys() -> set[tuple[str, str]]:
    """(section path, key) for every key of every section class."""
    found: set[tuple[str, str]] = set()

    def walk(model: type[BaseModel], path: str) -> None:
        for key, field in model.model_fields.items():
            nested = [a for a in (field.annotation, *getattr(field.annotation, "__args__", ()))
                      if isinstance(a, type) and issubclass(a, Section)]
            if nested:
                walk(nested[0], f"{path}.{key}")
            else:
                found.add((path, key))

    for section, field in RunConfig.model_fields.items():
        if section in ("method", "task"):
            for cls in section_classes(section).values():
                walk(cls, section)
        else:
            model = next(a for a in (field.annotation, *getattr(field.annotation, "__args__", ()))
                         if isinstance(a, type) and issubclass(a, BaseModel))
            walk(model, section)
    return found


def test_every_config_key_is_read_by_the_code() -> None:
    code = "\n".join(
        line for path in SRC.rglob("*.py") for line in path.read_text().splitlines()
        if not re.match(r"\s+\w+: .*=\s*Field\(", line)  # a field's definition is not a use
    )
    code = re.sub(r"\"[a-z_]+(\.[a-z_]+)+\"", '""', code)  # nor is a key's name in a list ("train.lr")
    unread = sorted(
        f"{path}.{key}" for path, key in leaf_keys()
        if key not in READ_BY_VALIDATION and not re.search(rf"\.{key}\b|\"{key}\"|'{key}'", code)
    )
    assert not unread, f"config keys nothing reads: {unread}"


def test_num_mix_samples_draws_that_many_records_by_weight(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [CHATS[0]] * 4)
    b = write_jsonl(tmp_path / "b.jsonl", [CHATS[1]] * 4)
    sources = [{"path": str(a), "weight": 1.0}, {"path": str(b), "weight": 3.0}]
    config = make_config(data={"train": sources, "packing": False}, train={"max_steps": 1})
    plain = train(config, ["output.name=plain"], quiet=True)
    drawn = train(config, ["output.name=drawn", "data.num_mix_samples=6"], quiet=True)
    assert plain.summary["data"]["samples"] == 4 + 12  # round(weight × size) each
    assert drawn.summary["data"]["samples"] == 6


def test_log_every_steps_thins_the_step_lines_of_train_log(make_config: Callable[..., dict[str, Any]]) -> None:
    result = train(make_config(train={"max_steps": 6, "log_every_steps": 4}), quiet=True)
    log = (result.run_dir / "train.log").read_text().splitlines()
    lines = [ln for ln in log if ln.startswith("step ") and "/" in ln.split()[1]]
    assert [ln.split()[1] for ln in lines] == ["4/6", "6/6"]
    assert len([m for m in result.metrics if "loss" in m]) == 6  # metrics.jsonl keeps every step
