"""examples/real_text: the script reproduces the committed files from this Python's documentation, and the
data check passes every pair: no errors, no duplicates, no leakage between the module-held-out splits.
(Real documentation draws true warnings: the IP addresses of `ipaddress`' examples read as personal data,
code-heavy docstrings as another language; they are reported, not hidden.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tunesmith.data.quality.checks import CheckOptions, run_checks

REAL = Path(__file__).resolve().parents[2] / "examples" / "real_text"
SETS = ("docs_instruction", "docs_text", "docs_dpo", "docs_chapters")


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the committed files were made from Python 3.11's docs")
def test_the_script_writes_the_committed_bytes_twice(tmp_path: Path) -> None:
    for attempt in ("a", "b"):  # a fresh interpreter each time: the script imports the whole standard library
        subprocess.run([sys.executable, str(REAL / "make_data.py"), str(tmp_path / attempt)], check=True)
        for name in SETS:
            for split in ("train.jsonl", "eval.jsonl"):
                assert (tmp_path / attempt / name / split).read_bytes() == (REAL / name / split).read_bytes()


@pytest.mark.parametrize("name", SETS)
def test_each_pair_passes_the_data_check(name: str) -> None:
    report = run_checks(REAL / name / "train.jsonl", REAL / name / "eval.jsonl", None, None, CheckOptions())
    assert report.errors == [], [f.message for f in report.errors]
    assert not [f.message for f in report.findings if f.check in ("duplicates", "leakage")]
    assert report.sections["leakage"] == [] and report.sections["near_duplicates"] == []
    held = [json.loads(line) for line in (REAL / name / "eval.jsonl").read_text().splitlines()]
    assert len(held) >= 48
