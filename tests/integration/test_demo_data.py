"""The demo's data (examples/demo): its script writes the committed files byte for byte, and tunesmith's own
data check finds nothing in them, leakage between the splits included."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections import Counter
from pathlib import Path

from tunesmith.data.quality.checks import CheckOptions, run_checks

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
HASHES = {  # sha256 of the committed files; make_data.py must reproduce them
    "train.jsonl": "f21b42ef65178ed05331d18c075791e387f399612253e41094b604c1ed799c96",
    "eval.jsonl": "af878d7dc9b5ffa91cf04e3dec447b50fb78e7522021c436108bdb8f3914c1ec",
}


def _make_data() -> object:
    spec = importlib.util.spec_from_file_location("demo_make_data", DEMO / "make_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_writes_the_committed_bytes(tmp_path: Path) -> None:
    _make_data().main(tmp_path)  # type: ignore[attr-defined]
    for name, digest in HASHES.items():
        written = (tmp_path / name).read_bytes()
        assert written == (DEMO / name).read_bytes(), f"{name} differs from the committed file"
        assert hashlib.sha256(written).hexdigest() == digest


def test_the_data_check_is_clean_and_the_splits_are_held_out() -> None:
    report = run_checks(DEMO / "train.jsonl", DEMO / "eval.jsonl", None, None, CheckOptions())
    assert report.findings == [] and report.sections["leakage"] == []
    train = [json.loads(line) for line in (DEMO / "train.jsonl").read_text().splitlines()]
    held = [json.loads(line) for line in (DEMO / "eval.jsonl").read_text().splitlines()]
    flags = Counter(r["output"].split(".")[0] for r in held)
    assert len(flags) == 5 and set(flags.values()) == {10}  # every flag, ten held-out cases each
    module = _make_data()
    splits = module.SPLITS  # type: ignore[attr-defined]
    for key in ("merchant", "country", "device"):  # no held-out merchant, country or device is ever trained on
        unseen = splits["eval"][key]
        assert not set(unseen) & set(splits["train"][key])
        assert not any(value in r["instruction"] for r in train for value in unseen)
