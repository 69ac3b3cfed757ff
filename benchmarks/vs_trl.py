"""tunesmith vs Hugging Face TRL's SFTTrainer + peft: same model, data, LoRA and real tokens.

    make bench            (or: .venv/bin/python benchmarks/vs_trl.py; --steps 30 by default)

Workload: SmolLM2-135M-Instruct; real instruction data of varied lengths (benchmarks/instruction_data.py:
Python's standard-library docstrings, median ~130 tokens after the chat template, p90 ~260); LoRA r 16,
alpha 32, dropout 0.05 on all linear layers; lr 2e-4 cosine, no warmup; max length 512; STEPS × 8
records, every side training on the same records once.

Sides, each in its own process (peak memory is its own):
- tunesmith: its default path (packing, loss from hidden states in chunks, frozen base in bf16,
  tcmalloc when installed, auto checkpointing). Eight records per optimizer step take about two packed
  rows of 512, so it runs with batch_size 2: each step carries the same real tokens as TRL's batch of 8.
- tunesmith, batch 8: eight packed rows per micro-batch (4k tokens), the widest it is usually run.
- TRL defaults: SFTConfig's defaults (gradient checkpointing, bf16 autocast, padded batches) with the
  same LoRA, batch 8, STEPS steps.
- TRL best: gradient checkpointing off, bf16, group-by-length sampling, LoRA dropout 0.
Then one scorer (its own process) computes every side's eval loss (answer tokens, token-weighted, fp32)
on the held-out records with tunesmith's renderer, so no side is scored by its own code.

Printed per side: real (non-padding) tokens/s, peak RSS, RSS growth after step 3, eval loss, MFU against
this CPU's fp32 and bf16 matmul peaks (measured here with torch on its threads), and the ratios to TRL.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
RANK, ALPHA, DROPOUT, LR, MAX_LENGTH, RECORDS_PER_STEP = 16, 32, 0.05, 2e-4, 512, 8


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_workload(out: Path, steps: int) -> tuple[Path, Path]:
    from instruction_data import write_split

    train, held = write_split(out / "all")
    rows = train.read_text().splitlines()
    random.Random(0).shuffle(rows)
    subset = out / "train.jsonl"
    subset.write_text("\n".join(rows[: steps * RECORDS_PER_STEP]) + "\n")
    return subset, held


def run_tunesmith(train: Path, held: Path, out: Path, batch_size: int) -> dict[str, Any]:
    import yaml

    config = {
        "model": {"path": "smollm2-135m-instruct"},
        "data": {"train": str(train), "eval": str(held), "max_length": MAX_LENGTH},
        "method": {"name": "lora", "r": RANK, "alpha": ALPHA, "dropout": DROPOUT, "target_modules": "all-linear"},
        "train": {"epochs": 1, "batch_size": batch_size, "lr": LR, "warmup_steps": 0, "seed": 0},
        "eval": {"none": True, "num_samples": 0},
        "output": {"dir": str(out), "name": f"tunesmith-{batch_size}"},
    }
    path = out / f"tunesmith-{batch_size}.yaml"
    path.write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tunesmith", "train", str(path), "--quiet"], check=True)
    seconds = time.perf_counter() - started
    run = out / f"tunesmith-{batch_size}"
    summary = json.loads((run / "summary.json").read_text())
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [s for s in steps if "loss" in s]
    real = sum(s["real_tokens_per_s"] * s["step_seconds"] for s in steps)
    rss = [s["peak_rss_mb"] for s in steps]
    return {
        "real_tokens_per_s": summary["real_tokens_per_s"], "peak_memory_mb": summary["peak_memory_mb"],
        "growth_after_step3_mb": rss[-1] - rss[min(2, len(rss) - 1)], "steps": len(steps), "real_tokens": real,
        "adapter": str(run / "final"), "wall_s": seconds,
    }  # fmt: skip


def run_trl(train: Path, out: Path, steps: int, best: bool) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from tunesmith.config import ModelConfig
    from tunesmith.models.load import resolve_model

    folder = resolve_model(ModelConfig()).folder
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    dataset = Dataset.from_list([
        {"prompt": [{"role": "user", "content": r["instruction"]}],
         "completion": [{"role": "assistant", "content": r["output"]}]}
        for r in rows
    ])  # fmt: skip
    extra: dict[str, Any] = {"gradient_checkpointing": False, "train_sampling_strategy": "group_by_length"} if best else {}
    args = SFTConfig(
        output_dir=str(out / "trl"), max_steps=steps, per_device_train_batch_size=RECORDS_PER_STEP,
        learning_rate=LR, max_length=MAX_LENGTH, logging_steps=1, save_strategy="no", report_to=[],
        warmup_steps=0, lr_scheduler_type="cosine", seed=0, disable_tqdm=True, bf16=True,
        use_cpu=not torch.cuda.is_available(), **extra,
    )  # fmt: skip
    rss: list[float] = []

    class Memory(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, *_: Any, **__: Any) -> None:
            rss.append(peak_mb())

    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(folder), args=args, train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(folder), callbacks=[Memory()],
        peft_config=LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0 if best else DROPOUT,
                               target_modules="all-linear"),
    )  # fmt: skip
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    tokens = max(entry.get("num_tokens", 0) for entry in logs)
    adapter = out / ("trl-best" if best else "trl-default")
    trainer.model.save_pretrained(adapter)
    return {
        "real_tokens_per_s": tokens / seconds, "peak_memory_mb": peak_mb(), "growth_after_step3_mb": rss[-1] - rss[2],
        "steps": len(logs), "real_tokens": tokens, "adapter": str(adapter), "wall_s": seconds,
    }  # fmt: skip


def score(adapters: dict[str, str], held: Path) -> dict[str, float]:
    """Eval loss of each adapter on the held-out records, one renderer and one loss for all (fp32)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tunesmith.config import load_config
    from tunesmith.data.templates import run_renderer
    from tunesmith.evaluate.loss import build_eval_batches, compute_eval_loss
    from tunesmith.models.load import load_tokenizer, resolve_model
    from tunesmith.objectives.logprobs import TrainedTokenLM
    from tunesmith.tasks import TASKS

    cfg = load_config({"model": {"path": "smollm2-135m-instruct"},
                       "data": {"train": str(held), "eval": str(held), "max_length": MAX_LENGTH}})
    source = resolve_model(cfg.model)
    tokenizer = load_tokenizer(source, cfg.model)
    task = TASKS.get(cfg.task.name).start()
    data = task.prepare(cfg, tokenizer, run_renderer(cfg, tokenizer))
    batches = build_eval_batches(data.eval, cfg, tokenizer.pad_token_id, 0, 1, task)
    losses = {}
    for name, adapter in {"base": "", **adapters}.items():
        model = AutoModelForCausalLM.from_pretrained(source.folder, dtype=torch.float32)
        if adapter:
            model = PeftModel.from_pretrained(model, adapter)
        losses[name] = compute_eval_loss(TrainedTokenLM(model), batches)
    return losses


def matmul_peaks() -> tuple[float, float]:
    """GFLOP/s of a 2048³ matmul in fp32 and in bf16 with torch, median of 5."""
    import torch

    peaks = []
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
        a @ b
        times = []
        for _ in range(5):
            started = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - started)
        peaks.append(2 * 2048**3 / sorted(times)[2] / 1e9)
    return peaks[0], peaks[1]


def flops_per_real_token() -> float:
    """Forward and input gradients through every weight, plus the LoRA weights' gradients."""
    from tunesmith.estimate.estimator import estimate_config

    found = estimate_config({"model": {"path": "smollm2-135m-instruct"}, "method": {"name": "lora", "r": RANK},
                             "data": {"train": str(ROOT / "examples" / "demo" / "train.jsonl")}})
    return 4.0 * found.total_params + 2.0 * found.trainable_params


def child(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work)
    train, held = work / "train.jsonl", work / "all" / "eval.jsonl"
    if args.side == "tunesmith":
        return run_tunesmith(train, held, work, args.batch_size)
    if args.side in ("trl-default", "trl-best"):
        return run_trl(train, work, args.steps, args.side == "trl-best")
    if args.side == "score":
        return score(json.loads(args.adapters), held)
    raise SystemExit(f"unknown side {args.side}")


def spawn(side: str, work: Path, steps: int, **extra: Any) -> Any:
    command = [sys.executable, __file__, "--side", side, "--work", str(work), "--steps", str(steps)]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{side} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--adapters", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_workload(work, args.steps)
        results = {
            "tunesmith": spawn("tunesmith", work, args.steps, batch_size=2),
            "tunesmith batch 8": spawn("tunesmith", work, args.steps, batch_size=8),
            "TRL defaults": spawn("trl-default", work, args.steps),
            "TRL best": spawn("trl-best", work, args.steps),
        }
        losses = spawn("score", work, args.steps, adapters=json.dumps({k: v["adapter"] for k, v in results.items()}))
    fp32_peak, bf16_peak = matmul_peaks()
    per_token = flops_per_real_token()
    for name, row in results.items():
        row["eval_loss"] = losses[name]
        row["mfu_fp32"] = row["real_tokens_per_s"] * per_token / (fp32_peak * 1e9)
        row["mfu_bf16"] = row["real_tokens_per_s"] * per_token / (bf16_peak * 1e9)
    print(table(results, losses["base"], fp32_peak, bf16_peak))
    if args.json:
        args.json.write_text(json.dumps({"sides": results, "base_eval_loss": losses["base"],
                                         "matmul_gflops": {"fp32": fp32_peak, "bf16": bf16_peak}}, indent=2))


def table(results: dict[str, dict[str, Any]], base_loss: float, fp32_peak: float, bf16_peak: float) -> str:
    default = results["TRL defaults"]
    lines = [
        f"matmul peak here: fp32 {fp32_peak:.0f} GFLOP/s, bf16 {bf16_peak:.0f} GFLOP/s; base model eval loss {base_loss:.3f}",
        f"{'side':20}{'steps':>6}{'real tok':>9}{'tok/s':>8}{'x TRL':>7}{'peak MB':>9}{'x TRL':>7}"
        f"{'growth':>8}{'eval loss':>10}{'MFU fp32':>9}{'MFU bf16':>9}",
    ]
    for name, r in results.items():
        lines.append(
            f"{name:20}{r['steps']:6d}{r['real_tokens']:9.0f}{r['real_tokens_per_s']:8.1f}"
            f"{r['real_tokens_per_s'] / default['real_tokens_per_s']:7.2f}{r['peak_memory_mb']:9.0f}"
            f"{r['peak_memory_mb'] / default['peak_memory_mb']:7.2f}{r['growth_after_step3_mb']:8.0f}"
            f"{r['eval_loss']:10.3f}{r['mfu_fp32']:9.1%}{r['mfu_bf16']:9.1%}"
        )
    best = results["TRL best"]
    ours = results["tunesmith"]
    lines.append(f"tunesmith vs TRL best: {ours['real_tokens_per_s'] / best['real_tokens_per_s']:.2f}x tokens/s, "
                 f"{ours['peak_memory_mb'] / best['peak_memory_mb']:.2f}x memory")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
