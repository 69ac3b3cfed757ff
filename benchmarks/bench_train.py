"""Training throughput and memory: tunesmith's loop vs TRL's SFTTrainer, same model, data and LoRA.

    make bench            (or: .venv/bin/python benchmarks/bench_train.py --steps 8)

Each side runs in its own process (so peak memory is its own) on SmolLM2-135M-Instruct and the demo
data, LoRA r=16 on all linear layers, lr 1e-3, max_length 512, for the same number of optimizer steps
over about the same number of samples per step. TRL runs with its defaults (gradient checkpointing,
bf16 autocast, padded batches); tunesmith with its defaults (packing, loss on trained positions only,
bf16 autocast where the CPU has native bf16). Prints real (non-padding) tokens/s, peak memory, the
last training loss and the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "demo" / "train.jsonl"
LR, RANK, ALPHA, MAX_LENGTH = 1e-3, 16, 32, 512


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_tunesmith(steps: int, out: Path) -> dict[str, float]:
    from tunesmith import train

    config = {
        "model": {"path": "smollm2-135m-instruct"},
        "data": {"train": str(DATA), "max_length": MAX_LENGTH, "packing": True},
        "method": {"name": "lora", "r": RANK, "alpha": ALPHA, "dropout": 0.0, "target_modules": "all-linear"},
        "train": {"max_steps": steps, "batch_size": 2, "lr": LR, "warmup_steps": 0, "seed": 0},
        "eval": {"none": True, "num_samples": 0},
        "output": {"dir": str(out), "name": "bench"},
    }
    result = train(config, quiet=True)
    losses = [m["loss"] for m in result.metrics if "loss" in m]
    return {
        "real_tokens_per_s": result.summary["real_tokens_per_s"],
        "peak_memory_mb": peak_mb(),
        "last_loss": losses[-1],
        "real_tokens_per_step": sum(
            m["real_tokens_per_s"] * m["step_seconds"] for m in result.metrics if "loss" in m
        )
        / len(losses),
    }


def run_trl(steps: int, out: Path) -> dict[str, float]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from tunesmith.config import ModelConfig
    from tunesmith.models.load import resolve_model

    folder = resolve_model(ModelConfig()).folder
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    dataset = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r["instruction"]}],
                "completion": [{"role": "assistant", "content": r["output"]}],
            }
            for r in rows
        ]
    )
    args = SFTConfig(
        output_dir=str(out / "trl"),
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=LR,
        max_length=MAX_LENGTH,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        warmup_steps=0,
        lr_scheduler_type="cosine",
        seed=0,
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(folder),
        args=args,
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(folder),
        peft_config=LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules="all-linear"),
    )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    tokens = max(entry.get("num_tokens", 0) for entry in logs)
    return {
        "real_tokens_per_s": tokens / seconds,
        "peak_memory_mb": peak_mb(),
        "last_loss": logs[-1]["loss"],
        "real_tokens_per_step": tokens / len(logs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--side", choices=["tunesmith", "trl"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        with tempfile.TemporaryDirectory() as tmp:
            runner = run_tunesmith if args.side == "tunesmith" else run_trl
            print(json.dumps(runner(args.steps, Path(tmp))))
        return
    results = {}
    for side in ("tunesmith", "trl"):
        proc = subprocess.run(
            [sys.executable, __file__, "--side", side, "--steps", str(args.steps)],
            capture_output=True,
            text=True,
            check=True,
        )
        results[side] = json.loads(proc.stdout.strip().splitlines()[-1])
    ours, theirs = results["tunesmith"], results["trl"]
    print(f"{'':22}{'tunesmith':>12}{'TRL SFTTrainer':>16}{'ratio':>8}")
    for key in ("real_tokens_per_s", "peak_memory_mb", "last_loss", "real_tokens_per_step"):
        ratio = ours[key] / theirs[key] if theirs[key] else float("nan")
        print(f"{key:22}{ours[key]:12.2f}{theirs[key]:16.2f}{ratio:8.2f}")


if __name__ == "__main__":
    main()
