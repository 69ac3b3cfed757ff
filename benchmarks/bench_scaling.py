"""One process against several on the same job: what `tunesmith train --nproc N` buys on this machine,
with DDP and with FSDP.

    make bench-scaling     (or: .venv/bin/python benchmarks/bench_scaling.py [--steps 12] [--nproc 2]
                                [--method lora|full])

SmolLM2-135M-Instruct, LoRA r16 on all linear layers (or full fine-tuning), the demo's data packed to 512
tokens, the same global batch (8 rows a step) and steps: 1 process with batch 8 (all cores), then N
processes with batch 8/N (cores shared out by the launcher), under DDP and under FSDP. Each side runs in
its own job; its summary gives the global real tokens per second, rank 0's peak memory, the loss curve
and the eval loss. Prints the ratios, and the largest loss difference from the one-process curve (the
same training, summed in another order).
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
GLOBAL_BATCH = 8


METHODS = {"lora": {"name": "lora", "r": 16, "alpha": 32, "dropout": 0.0}, "full": {"name": "full"}}


def config_for(name: str, batch_size: int, steps: int, out: Path, method: str, strategy: str) -> dict[str, Any]:
    return {
        "model": {"path": "smollm2-135m-instruct"},
        "data": {"train": str(DEMO / "train.jsonl"), "eval": str(DEMO / "eval.jsonl"), "max_length": 512,
                 "packing": True, "checks": "off"},
        "method": METHODS[method],
        "train": {"max_steps": steps, "batch_size": batch_size, "lr": 1e-4 if method == "lora" else 1e-5,
                  "save_every_minutes": None},
        "distributed": {"strategy": strategy},
        "eval": {"num_samples": 0, "forgetting": False, "memorization": {"samples": 0}},
        "output": {"dir": str(out), "name": name},
    }  # fmt: skip


def run(name: str, nproc: int, steps: int, out: Path, method: str, strategy: str = "ddp") -> dict[str, Any]:
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config_for(name, GLOBAL_BATCH // nproc, steps, out, method, strategy)))
    done = subprocess.run([sys.executable, "-m", "tunesmith", "train", str(path), "--quiet", "--nproc", str(nproc)],
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{name}: training failed: {done.stderr[-2000:]}")
    summary = json.loads((out / name / "summary.json").read_text())
    lines = [json.loads(line) for line in (out / name / "metrics.jsonl").read_text().splitlines()]
    job = f"{nproc} processes ({strategy})" if nproc > 1 else "1 process"
    return {"side": f"{job} × batch {GLOBAL_BATCH // nproc}",
            "tokens_per_s": summary["real_tokens_per_s"], "peak_mb": summary["peak_memory_mb"],
            "eval_loss": summary["eval_loss_after"], "losses": [r["loss"] for r in lines if "loss" in r]}


def table(rows: list[dict[str, Any]]) -> str:
    base = rows[0]
    lines = ["| side | real tokens/s | × 1 process | peak MB (rank 0) | eval loss after |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['side']} | {r['tokens_per_s']:.0f} | {r['tokens_per_s'] / base['tokens_per_s']:.2f} | "
                     f"{r['peak_mb']:,.0f} | {r['eval_loss']:.4f} |")
    for r in rows[1:]:
        gap = max(abs(a - b) for a, b in zip(base["losses"], r["losses"], strict=True))
        lines.append(f"\nlargest step-loss difference, {r['side']} against 1 process: {gap:.2e}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--method", choices=sorted(METHODS), default="lora")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run("one", 1, args.steps, Path(tmp), args.method)]
        for strategy in ("ddp", "fsdp"):
            rows.append(run(strategy, args.nproc, args.steps, Path(tmp), args.method, strategy))
    print(table(rows))


if __name__ == "__main__":
    main()
