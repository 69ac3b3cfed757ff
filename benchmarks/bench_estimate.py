"""How good `tunesmith estimate` is: predicted vs measured peak memory and training time of real runs.

    make bench-estimate     (or: .venv/bin/python benchmarks/bench_estimate.py [--steps 3] [--json OUT])

SmolLM2-135M-Instruct on the demo's data, eight configurations (full, LoRA, adapter, prompt; two sequence
lengths; with and without gradient checkpointing). Each configuration is estimated, then trained in its own
process (so its peak memory is its own) for a few steps; the table shows both and the error. The test
`tests/integration/test_estimate_accuracy.py` runs the same table and holds memory to ±20% and time to a
factor of 3 (a sanity band; time accuracy is this benchmark's to measure).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"
LORA = {"name": "lora", "r": 16, "alpha": 32, "dropout": 0.05}

# name → (method section, data overrides, train overrides)
CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "lora-512": (LORA, {"max_length": 512}, {"batch_size": 4}),
    "lora-256": (LORA, {"max_length": 256}, {"batch_size": 4}),
    "lora-512-gc": (LORA, {"max_length": 512}, {"batch_size": 4, "gradient_checkpointing": True}),
    "lora-unpacked": (LORA, {"max_length": 512, "packing": False}, {"batch_size": 8}),
    "full-256": ({"name": "full"}, {"max_length": 256}, {"batch_size": 2}),
    "full-256-gc": ({"name": "full"}, {"max_length": 256}, {"batch_size": 2, "gradient_checkpointing": True}),
    "adapter-512": ({"name": "adapter", "reduction_factor": 16}, {"max_length": 512}, {"batch_size": 4}),
    "prompt-256": ({"name": "prompt", "num_virtual_tokens": 20}, {"max_length": 256, "packing": False},
                   {"batch_size": 4}),
}


def config_for(name: str, steps: int, out: Path) -> dict[str, Any]:
    method, data, train = CONFIGS[name]
    return {
        "model": {"path": "smollm2-135m-instruct"},
        "data": {"train": str(DEMO / "train.jsonl"), "eval": str(DEMO / "eval.jsonl"), "packing": True,
                 "checks": "off", **data},
        "method": method,
        "train": {"max_steps": steps, "lr": 1e-4, "grad_accum": 1, "save_every_minutes": None, **train},
        "eval": {"num_samples": 0, "forgetting": False, "memorization": {"samples": 0}},
        "output": {"dir": str(out), "name": name},
    }


def measure(name: str, steps: int, out: Path) -> dict[str, Any]:
    """Train in its own process; its summary holds the estimate it made before training (the same code
    as `tunesmith estimate`) beside the measurement."""
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config_for(name, steps, out)))
    trained = subprocess.run([sys.executable, "-m", "tunesmith", "train", str(path), "--quiet"],
                             capture_output=True, text=True, timeout=1800)
    if trained.returncode != 0:
        raise RuntimeError(f"{name}: training failed: {trained.stderr[-1500:]}")
    summary = json.loads((out / name / "summary.json").read_text())
    predicted = summary["estimate"]
    return {
        "config": name,
        "estimated_mb": predicted["peak_memory_mb"], "measured_mb": summary["peak_memory_mb"],
        "estimated_s": predicted["train_s"], "measured_s": summary["train_s"],
        "memory_error": predicted["peak_memory_mb"] / summary["peak_memory_mb"] - 1,
        "time_error": predicted["train_s"] / summary["train_s"] - 1,
        "breakdown": predicted["breakdown"],
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| config | estimated peak MB | measured peak MB | error | estimated train s | measured train s | error |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['estimated_mb']:,.0f} | {r['measured_mb']:,.0f} | {r['memory_error']:+.0%} | "
                     f"{r['estimated_s']:.1f} | {r['measured_s']:.1f} | {r['time_error']:+.0%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=list(CONFIGS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(name, args.steps, Path(tmp)) for name in args.only]
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
