"""Real instruction data with varied lengths, available offline on every machine: Python's own
standard-library docstrings.

Each record asks what a public function, class or method of the standard library does; the answer is
its docstring (`inspect.getdoc`), text written by CPython's authors, not by us. Lengths vary the way real
instruction data does (on SmolLM2's tokenizer with its chat template: median ~130 tokens, p90 ~260,
max ~620), so padding costs what it costs on real data. The set is deterministic for a Python version;
held-out records come from modules that no training record comes from (split by a hash of the module
name), so an eval loss measures more than memorised answers.

    python benchmarks/instruction_data.py OUT_DIR     # writes OUT_DIR/train.jsonl and OUT_DIR/eval.jsonl
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import sys
import warnings
from pathlib import Path
from typing import Any

# modules that open windows, print on import, or only test CPython itself
SKIP = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "lib2to3", "test", "ensurepip"}
MIN_CHARS, MAX_CHARS = 150, 2200


def _public_objects(module: Any) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for attr, obj in sorted(vars(module).items()):
        if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj) or inspect.isbuiltin(obj):
            found.append((attr, obj))
        elif inspect.isclass(obj):
            found.append((attr, obj))
            for name, member in sorted(vars(obj).items()):
                inherited = getattr(getattr(object, name, None), "__doc__", None)
                if name.startswith("_") or not getattr(member, "__doc__", None) or member.__doc__ == inherited:
                    continue
                if inspect.isfunction(member) or inspect.ismethoddescriptor(member):
                    found.append((f"{attr}.{name}", member))
    return found


def docstring_records() -> list[dict[str, str]]:
    """[{"instruction", "output", "module"}] for every documented public object, in a fixed order."""
    records: dict[str, dict[str, str]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module_name in sorted(sys.stdlib_module_names):
            if module_name.startswith("_") or module_name in SKIP:
                continue
            try:
                module = importlib.import_module(module_name)
            except Exception:  # platform-specific modules (winreg, msvcrt, ...)
                continue
            for qualname, obj in _public_objects(module):
                doc = inspect.getdoc(obj)
                name = f"{module_name}.{qualname}"
                if doc and MIN_CHARS <= len(doc) <= MAX_CHARS and name not in records:
                    instruction = f"What does `{name}` do in Python's standard library?"
                    records[name] = {"instruction": instruction, "output": doc, "module": module_name}
    return list(records.values())


def held_out_modules(records: list[dict[str, str]], share: float = 0.1) -> set[str]:
    """Whole modules, in an order fixed by their names' hashes, until SHARE of the records is held out."""
    sizes: dict[str, int] = {}
    for r in records:
        sizes[r["module"]] = sizes.get(r["module"], 0) + 1
    held: set[str] = set()
    for name in sorted(sizes, key=lambda m: hashlib.sha256(m.encode()).hexdigest()):
        if sum(sizes[m] for m in held) >= share * len(records):
            break
        if sizes[name] <= 0.03 * len(records):  # no one module is most of the held-out set
            held.add(name)
    return held


def write_split(out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    records = docstring_records()
    held = held_out_modules(records)
    paths = out / "train.jsonl", out / "eval.jsonl"
    for path, held_out in zip(paths, (False, True), strict=True):
        rows = [r for r in records if (r["module"] in held) == held_out]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


if __name__ == "__main__":
    train, held = write_split(Path(sys.argv[1]))
    print(f"{train}: {sum(1 for _ in train.open())} records; {held}: {sum(1 for _ in held.open())} records")
