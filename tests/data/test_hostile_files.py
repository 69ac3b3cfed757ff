"""Files from Windows tools and from strangers: a UTF-8 byte-order mark and CRLF line ends are read in
every format; invalid UTF-8, deep nesting, a huge line or field, a binary file renamed .jsonl each give
one UserError naming the file and line (never a traceback), with memory bounded by the reader's limits."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pytest

from tunesmith.data import readers
from tunesmith.data.readers import read_rows
from tunesmith.errors import UserError

BOM = "\ufeff"
ROWS = [{"prompt": "Hello", "completion": "Hi there"}, {"prompt": "Bye", "completion": "See you"}]


def windows_file(path: Path, text: str) -> Path:
    path.write_bytes((BOM + text.replace("\n", "\r\n")).encode("utf-8"))
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".txt"])
def test_bom_and_crlf_are_read_in_every_text_format(tmp_path: Path, suffix: str) -> None:
    if suffix == ".jsonl":
        text = "".join(json.dumps(r) + "\n" for r in ROWS)
    elif suffix == ".json":
        text = json.dumps(ROWS, indent=2) + "\n"
    elif suffix == ".csv":
        text = "prompt,completion\n" + "".join(f"{r['prompt']},{r['completion']}\n" for r in ROWS)
    else:
        text = "line one\nline two\n"
    rows = [row for _, row in read_rows(windows_file(tmp_path / f"data{suffix}", text))]
    if suffix == ".txt":
        assert rows == [{"text": "line one\nline two\n"}]
    else:
        assert rows == ROWS  # the BOM is not part of the first key or value, no stray \r


def expect_one_line(path: Path, message: str) -> None:
    with pytest.raises(UserError) as info:
        read_rows(path)
    assert message in info.value.message and "\n" not in info.value.message


def test_invalid_utf8_names_file_and_line(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(b'{"prompt": "ok", "completion": "ok"}\n{"prompt": "caf\xe9", "completion": "x"}\n')
    expect_one_line(latin1, f"{latin1}:2: not valid UTF-8 (byte 0xe9")
    csv_file = tmp_path / "latin1.csv"
    csv_file.write_bytes(b"prompt,completion\nok,ok\ncaf\xe9,x\n")
    expect_one_line(csv_file, "not valid UTF-8 (byte 0xe9)")
    text = tmp_path / "doc.txt"
    text.write_bytes(b"caf\xe9")
    expect_one_line(text, f"{text}: not valid UTF-8")


def test_deep_nesting_huge_lines_and_fields(tmp_path: Path) -> None:
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"prompt": "ok", "completion": "ok"}\n' + "[" * 10_000 + "]" * 10_000 + "\n")
    expect_one_line(deep, f"{deep}:2: JSON nested too deeply")
    deep_json = tmp_path / "deep.json"
    deep_json.write_text("[" * 10_000 + "]" * 10_000)
    expect_one_line(deep_json, "nested too deeply")
    field = tmp_path / "field.csv"
    field.write_text("prompt,completion\n" + "a," + "b" * (readers.MAX_LINE_BYTES + 10) + "\n")
    expect_one_line(field, f"{field}:2: unreadable CSV (field larger than field limit")


def test_a_50mb_line_among_many_records_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    record = json.dumps(ROWS[0]) + "\n"
    with path.open("w") as handle:
        handle.write(record * 100_000)
        handle.write('{"prompt": "' + "x" * 50_000_000 + '", "completion": "y"}\n')
        handle.write(record * 10)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    expect_one_line(path, f"{path}:100001: line longer than 16 MiB")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200  # the reader never holds the 50 MB line (nor the file) at once beyond its limit


def test_binary_renamed_jsonl_and_files_too_large_to_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "model.jsonl"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    expect_one_line(binary, f"{binary}: looks like a binary file, not text data")
    monkeypatch.setattr(readers, "MAX_WHOLE_BYTES", 1000)
    whole = tmp_path / "big.json"
    whole.write_text(json.dumps([ROWS[0]] * 100))
    expect_one_line(whole, "too large to read whole (limit 0 MiB); use JSONL")


def test_json_validity_metric_survives_deep_nesting() -> None:
    from tunesmith.evaluate.metrics import _is_json

    assert _is_json('{"a": [1, 2]}') and not _is_json("[" * 100_000)


def test_data_check_reads_a_bom_file_and_names_deep_nesting(tmp_path: Path) -> None:
    from tunesmith.data.quality.items import iter_rows

    path = windows_file(tmp_path / "d.jsonl", json.dumps(ROWS[0]) + "\n" + "[" * 10_000 + "\n")
    rows = list(iter_rows(path))
    assert rows[0][1] == ROWS[0] and rows[0][2] is None
    assert rows[1][1] is None and rows[1][2] == "JSON nested too deeply"


def test_lone_surrogate_escapes_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"prompt": "ok", "completion": "fine"}\n{"prompt": "bad \\ud800 half", "completion": "x"}\n')
    expect_one_line(path, f"{path}:2: a \\ud800-\\udfff escape that is half a character")
    whole = tmp_path / "s.json"
    whole.write_text('[{"prompt": "\\udfff", "completion": "x"}]')
    expect_one_line(whole, "half a character")
