import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import write_jsonl
from tunesmith.config import SourceConfig
from tunesmith.data.records import Conversation, TextDocument
from tunesmith.data.sources import load_source, mix_sources, split_eval
from tunesmith.errors import UserError


def roles(record: Conversation) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in record.messages]


def test_alpaca_with_input_and_system(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl", [{"instruction": "Sum", "input": "1 2", "output": "3", "system": "Be brief"}]
    )
    source = load_source(SourceConfig(path=str(path)))
    assert source.format_name == "alpaca"
    assert roles(source.records[0]) == [("system", "Be brief"), ("user", "Sum\n\n1 2"), ("assistant", "3")]


def test_sharegpt_and_messages_detected(tmp_path: Path) -> None:
    share = write_jsonl(
        tmp_path / "s.jsonl",
        [{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}],
    )
    chat = write_jsonl(
        tmp_path / "m.jsonl",
        [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}],
    )
    for path, name in ((share, "sharegpt"), (chat, "messages")):
        source = load_source(SourceConfig(path=str(path)))
        assert source.format_name == name
        assert roles(source.records[0]) == [("user", "q"), ("assistant", "a")]


def test_column_mapping_csv(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text('question,answer\n"What, exactly?",Yes\n')
    source = load_source(SourceConfig(path=str(path), columns={"prompt": "question", "completion": "answer"}))
    assert source.format_name == "prompt_completion"
    assert roles(source.records[0]) == [("user", "What, exactly?"), ("assistant", "Yes")]


def test_json_parquet_and_text_folder(tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text(json.dumps([{"prompt": "p", "completion": "c"}]))
    pq.write_table(pa.table({"text": ["some domain text"]}), tmp_path / "d.parquet")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("first document")
    (tmp_path / "docs" / "b.txt").write_text("second document")
    assert roles(load_source(SourceConfig(path=str(tmp_path / "d.json"))).records[0]) == [
        ("user", "p"),
        ("assistant", "c"),
    ]
    parquet = load_source(SourceConfig(path=str(tmp_path / "d.parquet"))).records
    assert isinstance(parquet[0], TextDocument) and parquet[0].text == "some domain text"
    folder = load_source(SourceConfig(path=str(tmp_path / "docs"))).records
    assert [r.text for r in folder if isinstance(r, TextDocument)] == ["first document", "second document"]


def test_malformed_jsonl_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n\n{"prompt": "a", oops}\n')
    with pytest.raises(UserError, match=r"bad\.jsonl:3: malformed JSON line"):
        load_source(SourceConfig(path=str(path)))


def test_missing_field_names_record_and_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "x", "output": "y"}, {"instruction": "x"}])
    with pytest.raises(UserError, match=r"a\.jsonl:2: record has no field 'output'.*alpaca"):
        load_source(SourceConfig(path=str(path), format="alpaca"))


def test_no_assistant_turn(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [{"messages": [{"role": "user", "content": "hello?"}]}])
    with pytest.raises(UserError, match=r"m\.jsonl:1: conversation has no assistant turn"):
        load_source(SourceConfig(path=str(path)))


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(UserError, match="empty.jsonl: the dataset is empty"):
        load_source(SourceConfig(path=str(tmp_path / "empty.jsonl")))
    with pytest.raises(UserError, match="data file .*nope.jsonl does not exist"):
        load_source(SourceConfig(path=str(tmp_path / "nope.jsonl")))


def test_undetectable_format_lists_expected(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", [{"q": 1}])
    with pytest.raises(UserError, match=r"x\.jsonl:1: cannot tell the record format from fields \['q'\]"):
        load_source(SourceConfig(path=str(path)))


def test_mix_weights_are_reproducible(tmp_path: Path) -> None:
    a = load_source(
        SourceConfig(
            path=str(write_jsonl(tmp_path / "a.jsonl", [{"text": f"a{i}"} for i in range(10)])), weight=0.5
        )
    )
    b = load_source(
        SourceConfig(
            path=str(write_jsonl(tmp_path / "b.jsonl", [{"text": f"b{i}"} for i in range(4)])), weight=2.5
        )
    )
    mixed = mix_sources([a, b], seed=3)
    texts = [r.text for r in mixed if isinstance(r, TextDocument)]
    assert len([t for t in texts if t.startswith("a")]) == 5
    assert len([t for t in texts if t.startswith("b")]) == 10  # every record twice plus a random half
    assert texts == [r.text for r in mix_sources([a, b], seed=3) if isinstance(r, TextDocument)]
    assert texts != [r.text for r in mix_sources([a, b], seed=4) if isinstance(r, TextDocument)]


def test_eval_split_is_disjoint_and_seeded() -> None:
    records = [TextDocument(f"t{i}", f"s{i}") for i in range(20)]
    train, held = split_eval(records, 0.1, seed=0)
    assert len(held) == 2 and len(train) == 18 and not {r.text for r in train} & {r.text for r in held}
    assert [r.text for r in split_eval(records, 0.1, seed=0)[1]] == [r.text for r in held]
