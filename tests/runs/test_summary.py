"""summary.json is a typed record: every documented field is there with its type, and a malformed summary is
refused before it is written."""

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from tunesmith import train
from tunesmith.runs.summary import RunSummary, typed_summary


def test_a_run_writes_every_documented_field(make_config: Callable[..., dict[str, Any]]) -> None:
    result = train(make_config(train={"max_steps": 2}), quiet=True)
    written = RunSummary.model_validate_json((result.run_dir / "summary.json").read_text())
    assert set(RunSummary.model_fields) <= set(written.model_dump())
    assert written.steps == 2 and written.method == "lora" and written.status == "finished"
    assert all(field.description for field in RunSummary.model_fields.values())


def test_a_malformed_summary_is_refused() -> None:
    with pytest.raises(ValidationError, match="steps"):
        typed_summary({"steps": "two"})
