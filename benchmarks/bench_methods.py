"""Every method on the same job: SmolLM2-135M-Instruct, the demo's fraud-flag data, the same steps.

    make bench-methods     (or: .venv/bin/python benchmarks/bench_methods.py --steps 12)

Each method runs in its own process (so peak memory is its own) through `tunesmith.train`, with the
learning rate its paper / peft's examples use for it. Prints trainable parameters, the memory of the
trainable state (weights + grads + AdamW moments), peak process memory, real tokens/s and eval loss
before → after, with ratios against full fine-tuning, the standard alternative. qlora is measured only
where CUDA is available.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"

# method section and learning rate of each benchmarked method
METHODS: dict[str, tuple[dict[str, Any], float]] = {
    "full": ({"name": "full"}, 5e-5),
    "freeze": ({"name": "freeze", "trainable_layers": 4, "trainable_modules": ["norm"]}, 1e-4),
    "lora": ({"name": "lora", "r": 16, "alpha": 32, "dropout": 0.0}, 1e-3),
    "dora": ({"name": "dora", "r": 16, "alpha": 32, "dropout": 0.0}, 1e-3),
    "qlora": ({"name": "qlora", "r": 16, "alpha": 32, "dropout": 0.0}, 1e-3),
    "adapter": ({"name": "adapter", "placement": "houlsby", "reduction_factor": 16}, 1e-3),
    "prefix": ({"name": "prefix", "num_virtual_tokens": 20}, 1e-2),
    "prompt": ({"name": "prompt", "num_virtual_tokens": 20}, 3e-2),
    "ia3": ({"name": "ia3"}, 1e-2),
}


def run_one(name: str, steps: int, out: Path) -> dict[str, Any]:
    from tunesmith import train

    method, lr = METHODS[name]
    config = {
        "model": {"path": "smollm2-135m-instruct"},
        "data": {"train": str(DEMO / "train.jsonl"), "eval": str(DEMO / "eval.jsonl"), "max_length": 512},
        "method": method,
        "train": {"max_steps": steps, "batch_size": 4, "lr": lr, "warmup_steps": 1, "seed": 0},
        "eval": {"num_samples": 0},
        "output": {"dir": str(out), "name": name},
    }
    summary = train(config, quiet=True).summary
    keys = ["trainable_params", "total_params", "trainable_state_mb", "real_tokens_per_s"]
    return {
        **{k: summary[k] for k in keys},
        "eval_loss_before": summary["eval_loss_before"],
        "eval_loss_after": summary["eval_loss_after"],
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    full = results.get("full")
    lines = [
        "| method | trainable params | trainable state MB | peak memory MB | real tok/s | eval loss before → after |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        if "skipped" in r:
            lines.append(f"| {name} | {r['skipped']} | | | | |")
            continue
        mem = f"{r['peak_memory_mb']:,.0f}"
        speed = f"{r['real_tokens_per_s']:,.0f}"
        if full and name != "full":
            mem += f" ({r['peak_memory_mb'] / full['peak_memory_mb']:.2f}×)"
            speed += f" ({r['real_tokens_per_s'] / full['real_tokens_per_s']:.2f}×)"
        lines.append(
            f"| {name} | {r['trainable_params']:,} ({100 * r['trainable_params'] / r['total_params']:.2f}%) "
            f"| {r['trainable_state_mb']:,.1f} | {mem} | {speed} "
            f"| {r['eval_loss_before']:.3f} → {r['eval_loss_after']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.steps, args.out)))
        return
    import torch

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.methods.split(","):
            if name == "qlora" and not torch.cuda.is_available():
                results[name] = {"skipped": "needs CUDA (not measured here)"}
                continue
            proc = subprocess.run(
                [sys.executable, __file__, "--one", name, "--steps", str(args.steps), "--out", tmp],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    device = "CUDA" if torch.cuda.is_available() else "CPU"
    print(f"{args.steps} steps, batch 4, SmolLM2-135M-Instruct, demo data, {device}; ratios vs full")
    print(table(results))


if __name__ == "__main__":
    main()
