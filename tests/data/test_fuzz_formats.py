"""Fuzzing (hypothesis): random and mutated records of every format, and random bytes, go through the
readers and the record formats; every outcome is records or a UserError, never another exception."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunesmith.config import SourceConfig
from tunesmith.data.formats import FORMATS
from tunesmith.data.readers import read_rows
from tunesmith.data.sources import load_source
from tunesmith.errors import UserError

KEYS = ["prompt", "completion", "messages", "role", "content", "conversations", "from", "value", "instruction",
        "input", "output", "chosen", "rejected", "label", "text", "system", "margin"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=12,
)
rows = st.dictionaries(st.sampled_from(KEYS), values, min_size=1, max_size=6)
FORMAT_NAMES = ["auto", *FORMATS.names()]


def load_all(path: Path) -> None:
    for name in FORMAT_NAMES:
        with contextlib.suppress(UserError):
            load_source(SourceConfig(path=str(path), format=name))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, min_size=1, max_size=4))
def test_random_records_give_records_or_a_user_error(records: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        load_all(path)


VALID = [
    {"prompt": "Hi", "completion": "Hello"},
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
    {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
    {"instruction": "Greet", "input": "", "output": "Hello"},
    {"prompt": "Hi", "chosen": "Hello", "rejected": "Go away"},
    {"text": "Plain text.", "label": "a"},
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.integers(0, 400), st.binary(min_size=1, max_size=8))
def test_mutated_bytes_give_records_or_a_user_error(record: dict[str, Any], at: int, junk: bytes) -> None:
    raw = (json.dumps(record) + "\n").encode()
    at = at % len(raw)
    mutated = raw[:at] + junk + raw[at + 1 :]
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".jsonl", ".json", ".csv", ".txt"):
            path = Path(tmp) / f"data{suffix}"
            path.write_bytes(mutated)
            with contextlib.suppress(UserError):
                read_rows(path)
        load_all(Path(tmp) / "data.jsonl")
