"""`tunesmith data check`: planted near-duplicates are found, personal data is found with checksums,
leakage and encoding damage are reported, --fix cleans without touching the input, bad files get one
line and status 2, and `train` stops on check errors unless told otherwise."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import write_jsonl
from tunesmith.data.quality.checks import CheckOptions, run_checks
from tunesmith.data.quality.pii import find_pii, mask

VOCAB = [f"w{i}" for i in range(3000)]


def base_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(VOCAB) for _ in range(100)) for _ in range(n)]


def light_edit(text: str, rng: random.Random) -> str:
    words = text.split()
    for _ in range(1):  # one word of 100 replaced: Jaccard of the 5-gram shingles ≈ 0.9
        words[rng.randrange(len(words))] = rng.choice(VOCAB)
    return " ".join(words)


def test_near_duplicates_are_found(tmp_path: Path) -> None:
    rng = random.Random(1)
    texts = base_texts(200)
    planted = rng.sample(range(200), 60)
    rows = [{"instruction": t, "output": "ok"} for t in texts]
    rows += [{"instruction": light_edit(texts[i], rng), "output": "ok"} for i in planted]
    report = run_checks(write_jsonl(tmp_path / "d.jsonl", rows), None, None, None, CheckOptions(fast=True))
    groups = report.sections["near_duplicates"]
    together = {frozenset(g) for g in groups}
    found = sum(any({i, 200 + k} <= g for g in together) for k, i in enumerate(planted))
    assert found / len(planted) >= 0.95
    false_pairs = sum(len(g) - 1 for g in groups) - found
    assert false_pairs <= 2


def test_banded_lsh_matches_datasketch_index() -> None:
    """Parity: our sort-based banding finds exactly the verified pairs datasketch's MinHashLSH finds."""
    from datasketch import MinHash, MinHashLSH

    from tunesmith.data.quality.minhash import (
        LSH_WEIGHTS,
        NUM_PERM,
        SignatureStore,
        _permutations,
        signature,
        similar_pairs,
    )
    from tunesmith.data.quality.text import shingles

    rng = random.Random(3)
    texts = base_texts(150, seed=3)
    texts += [light_edit(texts[i], rng) for i in rng.sample(range(150), 50)]
    signatures = [signature(shingles(t, 5)) for t in texts]
    ours = set(similar_pairs(SignatureStore.of(np.stack(signatures)), 0.8))
    lsh = MinHashLSH(threshold=0.8, num_perm=NUM_PERM, weights=LSH_WEIGHTS)
    reference = set()
    for j, values in enumerate(signatures):
        sketch = MinHash(num_perm=NUM_PERM, hashvalues=values, scheme=_permutations()[1])
        for i in lsh.query(sketch):
            if (signatures[i] == values).mean() >= 0.8:
                reference.add((i, j))
        lsh.insert(j, sketch)
    assert len(reference) >= 45 and ours == reference


def test_fix_streams_a_cleaned_copy(tmp_path: Path) -> None:
    from tunesmith.data.quality.fix import write_fixed

    rows = [{"instruction": f"question {i} about cards", "output": "call jane@example.com"} for i in range(5)]
    source = write_jsonl(tmp_path / "d.jsonl", [*rows, rows[1]])
    before = source.read_bytes()
    report = run_checks(source, None, None, None, CheckOptions(fast=True))
    kept, removed = write_fixed(source, report, tmp_path / "clean.jsonl")
    assert (kept, removed) == (5, 1) and source.read_bytes() == before
    cleaned = [json.loads(line) for line in (tmp_path / "clean.jsonl").read_text().splitlines()]
    assert [r["instruction"] for r in cleaned] == [r["instruction"] for r in rows]
    assert all(r["output"] == "call [EMAIL]" for r in cleaned)
    log = [json.loads(line) for line in (tmp_path / "clean.removed.jsonl").read_text().splitlines()]
    assert log == [{"record": 5, "where": f"{source}:6", "reason": "exact duplicate of record 1"}]


def test_pii_kinds_with_checksums() -> None:
    text = (
        "Mail jane.doe@example.com or call +44 20 7946 0958. Card 4111 1111 1111 1111, not 4111 1111 1111 1112. "
        "IBAN GB82 WEST 1234 5698 7654 32, ip 192.168.1.20, SSN 123-45-6789."
    )
    kinds = [kind for kind, _, _ in find_pii(text)]
    assert kinds == ["email", "phone", "credit_card", "iban", "ip_address", "ssn"]
    masked = mask(text)
    assert "[EMAIL]" in masked and "[CREDIT_CARD]" in masked and "4111 1111 1111 1112" in masked
    assert "jane.doe" not in masked and "192.168.1.20" not in masked


def test_check_cli_report_and_fix(tmp_path: Path) -> None:
    rows = [
        {"instruction": "Reset my password please", "output": "Use the link in the app."},
        {"instruction": "Reset my password please", "output": "Use the link in the app."},
        {"instruction": "Email me at bob@example.org", "output": "Sure â€” done."},
        {"instruction": "  ", "output": "Nothing asked."},
    ]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    (tmp_path / "train.jsonl").write_text(train.read_text() + "{not json\n")
    held = write_jsonl(
        tmp_path / "eval.jsonl", [rows[0], {"instruction": "Something new entirely", "output": "Yes."}]
    )
    before = hashlib.sha256(train.read_bytes()).hexdigest()
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunesmith",
            "data",
            "check",
            str(train),
            "--eval",
            str(held),
            "--json",
            str(out),
            "--html",
            str(tmp_path / "report.html"),
            "--fix",
            str(tmp_path / "clean.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    for key in (
        "records",
        "exact_duplicates",
        "near_duplicates",
        "pii",
        "leakage",
        "too_long",
        "empty_fields",
        "languages",
    ):
        assert key in report
    assert report["records"] == 5 and report["exact_duplicates"] == [[0, 1]]
    assert {"record": 2, "field": "instruction", "kind": "email"} in report["pii"]
    assert report["leakage"][0] == {"eval_record": 0, "train_record": 0, "kind": "exact"}
    assert {"record": 3, "field": "instruction"} in report["empty_fields"]
    assert report["encoding_damage"] == [2]
    html = (tmp_path / "report.html").read_text()
    assert "<svg" in html and "http" not in html.lower().replace("http-equiv", "")
    cleaned = [json.loads(line) for line in (tmp_path / "clean.jsonl").read_text().splitlines()]
    assert (
        len(cleaned) == 3
        and "[EMAIL]" in cleaned[1]["instruction"]
        and cleaned[1]["output"] == "Sure — done."
    )
    removed = [json.loads(line) for line in (tmp_path / "clean.removed.jsonl").read_text().splitlines()]
    assert {r["record"] for r in removed} == {1, 4}
    assert hashlib.sha256(train.read_bytes()).hexdigest() == before  # input untouched


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", b"", "the file is empty (0 bytes)"),
        ("blob.jsonl", bytes(range(256)) * 4, "looks like a binary file"),
        ("fake.parquet", b"this is not parquet at all\n", "fake.parquet"),
    ],
)
def test_bad_files_one_line_exit_2(name: str, content: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    proc = subprocess.run(
        [sys.executable, "-m", "tunesmith", "data", "check", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr


def test_identical_eval_is_reported(tmp_path: Path) -> None:
    rows = [{"instruction": f"q{i} about things", "output": "a"} for i in range(5)]
    train = write_jsonl(tmp_path / "t.jsonl", rows)
    held = write_jsonl(tmp_path / "e.jsonl", rows)
    report = run_checks(train, held, None, None, CheckOptions(fast=True))
    assert any(
        "holds exactly the training records" in f.message and f.severity == "error" for f in report.findings
    )


def test_train_stops_on_check_errors(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    from tunesmith import train
    from tunesmith.errors import UserError

    config = make_config(data={"checks": "error"})
    with pytest.raises(
        UserError, match=r"data check \(.*train.jsonl\): 2 of 2 eval records overlap training data"
    ):
        train(config, quiet=True)
    assert not (tmp_path / "runs" / "t").exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_csv_and_parquet_are_checked_streaming(tmp_path: Path, suffix: str) -> None:
    import pandas as pd

    rows = [{"instruction": f"question {i} about my card", "output": f"answer {i}"} for i in range(9000)]
    rows[8500] = dict(rows[3])  # an exact duplicate past the first Parquet batch (4,096 rows)
    rows[8700]["output"] = "write to me at jane@example.com"
    path = tmp_path / f"d{suffix}"
    frame = pd.DataFrame(rows)
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    report = run_checks(path, None, None, None, CheckOptions(fast=False, languages=False))
    assert report.records == 9000
    assert report.sections["exact_duplicates"] == [[3, 8500]]
    assert report.sections["pii"] == [{"record": 8700, "field": "output", "kind": "email"}]
