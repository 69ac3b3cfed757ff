"""Examples on real text no one here wrote, extracted from what this machine already has:

- Python's standard-library docstrings (written by CPython's authors; PSF licence), the same extraction
  as `benchmarks/instruction_data.py`, held out by module (no module is in both splits):
  - `docs_instruction/`: "What does `X` do?" -> the first paragraph of X's documentation;
  - `docs_text/`: the documentation as plain text, for domain adaptation (`task: causal_lm`);
  - `docs_dpo/`: the same question, its own first paragraph preferred over another object's of the same
    module (a plausible wrong answer);
  - `docs_chapters/`: a docstring -> the chapter of the Library Reference that documents its module
    (text processing, data types, numbers and math, files, compression, concurrency, internet protocols,
    internet data), held out by module.

Exact and near duplicates are dropped with tunesmith's own data check, and held-out records that still
overlap training data are dropped (decontamination), so `tunesmith data check` passes each pair of files.
The output is deterministic for a given Python and set of installed Debian packages; the generated files
are committed (made with Python 3.11), so every machine trains on the same bytes.

    python examples/real_text/make_data.py [OUT_DIR]
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository root: benchmarks/ holds the docstring extraction

from benchmarks.instruction_data import docstring_records, held_out_modules  # noqa: E402
from tunesmith.data.quality.clean import decontaminate, deduplicate  # noqa: E402

# The chapters of the Python Library Reference (docs.python.org/3/library) and modules each documents.
CHAPTERS = {
    "text processing": ["string", "re", "difflib", "textwrap", "unicodedata", "stringprep", "readline", "rlcompleter"],
    "data types": ["datetime", "zoneinfo", "calendar", "collections", "heapq", "bisect", "array", "weakref", "types",
                   "copy", "pprint", "reprlib", "enum", "graphlib"],
    "numbers and math": ["numbers", "math", "cmath", "decimal", "fractions", "random", "statistics"],
    "files and directories": ["pathlib", "fileinput", "stat", "filecmp", "tempfile", "glob", "fnmatch", "linecache",
                              "shutil"],
    "data compression and archiving": ["zlib", "gzip", "bz2", "lzma", "zipfile", "tarfile"],
    "concurrent execution": ["threading", "multiprocessing", "concurrent", "subprocess", "sched", "queue",
                             "contextvars"],
    "internet protocols": ["webbrowser", "wsgiref", "urllib", "http", "ftplib", "poplib", "imaplib", "smtplib",
                           "uuid", "socketserver", "xmlrpc", "ipaddress"],
    "internet data handling": ["email", "json", "mailbox", "mimetypes", "base64", "binascii", "quopri"],
}
CHAPTER_OF = {module: chapter for chapter, modules in CHAPTERS.items() for module in modules}
SIZES = {"docs_instruction": (480, 48), "docs_text": (600, 60), "docs_dpo": (320, 48)}


def first_paragraph(doc: str) -> str:
    return doc.split("\n\n")[0].strip()


def docs_sets() -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    records = docstring_records()
    held = held_out_modules(records)
    split: dict[bool, list[dict[str, str]]] = {False: [], True: []}
    for record in records:
        split[record["module"] in held].append(record)
    sets = {}
    for name, make in (("docs_instruction", _instruction), ("docs_text", _text), ("docs_dpo", _preference)):
        n_train, n_eval = SIZES[name]
        sets[name] = (_sample(make(split[False]), n_train, name), _sample(make(split[True]), 3 * n_eval, name))
    return sets


def _instruction(records: list[dict[str, str]]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        answer = first_paragraph(r["output"])
        if 40 <= len(answer) <= 400:
            rows.append({"instruction": r["instruction"], "output": answer})
    return rows


def _text(records: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [{"text": r["output"]} for r in records]


def _preference(records: list[dict[str, str]]) -> list[dict[str, Any]]:
    by_module: dict[str, list[dict[str, str]]] = {}
    for r in records:
        if 40 <= len(first_paragraph(r["output"])) <= 400:
            by_module.setdefault(r["module"], []).append(r)
    rows = []
    for module in sorted(by_module):
        group = by_module[module]
        for i, r in enumerate(group):
            other = group[(i + 1) % len(group)]
            chosen, rejected = first_paragraph(r["output"]), first_paragraph(other["output"])
            if other is not r and chosen != rejected:
                rows.append({"prompt": r["instruction"], "chosen": chosen, "rejected": rejected})
    return rows


def _sample(rows: list[dict[str, Any]], n: int, salt: str) -> list[dict[str, Any]]:
    """n rows in an order fixed by hashes of their text (stable when the source order changes)."""
    key = lambda row: hashlib.sha256((salt + json.dumps(row, sort_keys=True)).encode()).hexdigest()  # noqa: E731
    return sorted(rows, key=key)[:n]


def chapter_sets() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Docstrings labelled with the Library Reference chapter that documents their module, held out by
    module: the model must tell the topic from the text, not remember the module."""
    records = [r for r in docstring_records() if r["module"] in CHAPTER_OF]
    held = held_out_modules(records, share=0.25)
    rows = {False: [], True: []}  # type: dict[bool, list[dict[str, Any]]]
    for r in records:
        text = r["output"][:1200]
        rows[r["module"] in held].append({"text": text, "label": CHAPTER_OF[r["module"]]})
    return _sample(rows[False], 900, "chapters"), _sample(rows[True], 400, "chapters")


def write(out: Path, name: str, train: list[dict[str, Any]], held: list[dict[str, Any]], n_eval: int) -> None:
    train = deduplicate(train)
    held = decontaminate(train, deduplicate(held))
    held = held[:n_eval]
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for file, rows in (("train.jsonl", train), ("eval.jsonl", held)):
        (folder / file).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{folder}: {len(train)} training, {len(held)} held-out records")


def main(out: Path = HERE) -> None:
    for name, (train, held) in docs_sets().items():
        write(out, name, train, held, SIZES[name][1])
    train, held = chapter_sets()
    write(out, "docs_chapters", train, held, 200)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
