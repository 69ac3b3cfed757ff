"""The duplicate check on real text: Python's standard-library documentation paragraphs of 40-250 words
(benchmarks/instruction_data.py), with planted one- and two-word edits and case / spacing variants."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

from tests.conftest import write_jsonl
from tunesmith.data.quality.checks import CheckOptions, run_checks
from tunesmith.data.quality.text import char_shingles

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "instruction_data.py"
FILLERS = ["value", "object", "return", "string", "the", "file", "number", "default", "list", "error"]


def distinct_paragraphs(count: int) -> list[str]:
    """Real paragraphs that share under half their character 5-grams with every other one kept."""
    spec = importlib.util.spec_from_file_location("instruction_data", DATA)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    texts = sorted({r["output"] for r in module.docstring_records() if 40 <= len(r["output"].split()) <= 250})
    kept: list[tuple[str, set[str]]] = []
    for text in texts:
        grams = char_shingles(text, 5)
        if all(len(grams & g) / len(grams | g) < 0.5 for _, g in kept):
            kept.append((text, grams))
        if len(kept) == count:
            break
    return [t for t, _ in kept]


def edited(text: str, words: int, rng: random.Random) -> str:
    tokens = text.split(" ")
    for _ in range(words):
        i = rng.randrange(len(tokens))
        kind = rng.choice(["replace", "delete", "insert"])
        if kind == "replace":
            tokens[i] = rng.choice(FILLERS)
        elif kind == "delete" and len(tokens) > 5:
            del tokens[i]
        else:
            tokens.insert(i, rng.choice(FILLERS))
    return " ".join(tokens)


def respaced(text: str, rng: random.Random) -> str:
    tokens = text.split()
    return "\n  ".join(" ".join(t.upper() if rng.random() < 0.3 else t for t in tokens[i : i + 7])
                       for i in range(0, len(tokens), 7))


def test_edited_and_respaced_copies_of_real_paragraphs_are_found(tmp_path: Path) -> None:
    rng = random.Random(0)
    originals = distinct_paragraphs(240)
    assert len(originals) == 240
    picks = rng.sample(range(240), 180)
    plants = {"one word": picks[:60], "two words": picks[60:120], "case and spacing": picks[120:]}
    copies: list[tuple[str, int]] = []  # (kind, original)
    rows = [{"instruction": "Explain.", "output": t} for t in originals]
    for kind, chosen in plants.items():
        for i in chosen:
            words = 1 if kind == "one word" else 2
            text = respaced(originals[i], rng) if kind == "case and spacing" else edited(originals[i], words, rng)
            rows.append({"instruction": "Explain.", "output": text})
            copies.append((kind, i))
    report = run_checks(write_jsonl(tmp_path / "d.jsonl", rows), None, None, None, CheckOptions(fast=True))
    groups = [set(g) for g in report.sections["exact_duplicates"] + report.sections["near_duplicates"]]
    for kind in plants:
        planted = [(240 + k, i) for k, (c, i) in enumerate(copies) if c == kind]
        found = sum(any({copy, i} <= g for g in groups) for copy, i in planted)
        assert found / len(planted) >= 0.95, f"{kind}: {found} of {len(planted)} found"
    wrongly = {i for g in groups for i in g if i < 240 and len({j for j in g if j < 240}) > 1}
    assert len(wrongly) / 240 < 0.01, f"{len(wrongly)} distinct paragraphs flagged together"
