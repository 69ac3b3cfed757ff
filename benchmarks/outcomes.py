"""Does fine-tuning help, and does tunesmith help as much as the standard stack, at equal compute?

    make bench-outcomes     (or: .venv/bin/python benchmarks/outcomes.py [--examples docs_dpo,...] [--json OUT])

For each real-text example in examples/real_text/ (Python's own documentation, held out by module):
- tunesmith trains the example's config as it is (its defaults beyond what the config sets);
- the standard stack trains the same model, data, LoRA and optimizer settings (learning rate, schedule,
  warmup, batch × accumulation, seed) with its own defaults otherwise: TRL's SFTTrainer (instruction and
  plain text), TRL's DPOTrainer (preferences), transformers' Trainer with peft (classification: TRL has no
  classification trainer). Equal compute means equal real (non-padding) training tokens: tunesmith packs,
  TRL pads, so TRL's step count is set from tunesmith's measured real tokens and TRL's own tokenization;
  DPO and classification are not packed and take the same steps;
- one scorer process then scores the base model, TRL's and tunesmith's result with the same code
  (tunesmith's `eval`, `tunesmith.runs.evaluation.evaluate_model`) in fp32 on the held-out split, so
  neither side is scored by its own trainer (a run's own figures are measured in its training precision,
  bf16 autocast on this CPU, and differ slightly: e.g. DPO's base choice accuracy 0.604 there, 0.625
  here). Classification's baselines: the fresh head (chance), always answering the held-out split's most
  common chapter, and a decoder (SmolLM2-135M-Instruct) scoring each chapter's name zero-shot.

Every training side runs in its own process, so wall time (`train_s`: the training loop, model loading
and data preparation excluded; for tunesmith's DPO also the reference pass before step 1, which TRL does
inside every step) and peak resident memory are its own. It is defaults against defaults: TRL trains in
fp32 on a CPU with gradient checkpointing on (its defaults); tunesmith in bf16 autocast over a bf16
frozen base, checkpointing only what memory requires (its defaults). Printed: the held-out metric of
each side, wall time, peak memory, real tokens trained, and tunesmith's metric minus TRL's.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "examples" / "real_text"
ZERO_SHOT_PROMPT = (
    "Which chapter of the Python Library Reference documents the module this docstring comes from? "
    "Answer with one of: {labels}.\n\n{text}"
)


LOWER_IS_BETTER = {"eval_loss", "perplexity"}


@dataclass(frozen=True)
class Example:
    kind: str  # sft | lm | dpo | classification
    metrics: tuple[str, ...]  # the first is the headline


EXAMPLES = {  # in the order they run: the quick ones first
    "docs_chapters": Example("classification", ("macro_f1", "accuracy")),
    "docs_dpo": Example("dpo", ("choice_accuracy", "pref_accuracy", "reward_margin", "eval_loss")),
    "docs_instruction": Example("sft", ("rougeL", "rouge1", "exact_match", "eval_loss")),
    "docs_text": Example("lm", ("perplexity", "eval_loss")),
}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_config(name: str) -> Any:
    from tunesmith.config import load_config

    return load_config(REAL / f"{name}.yaml")


def records(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


# --- the training sides (each its own process) ---


def train_tunesmith(name: str, work: Path) -> dict[str, Any]:
    """The example's config as it is; no evaluation in the run (the scorer does it for every side)."""
    config = REAL / f"{name}.yaml"
    overrides = [f"output.dir={work}", f"output.name={name}-tunesmith", "eval.none=true", "eval.forgetting=false"]
    subprocess.run([sys.executable, "-m", "tunesmith", "train", str(config), "--quiet", *overrides], check=True)
    run = work / f"{name}-tunesmith"
    summary = json.loads((run / "summary.json").read_text())
    return {"train_s": summary["train_s"], "peak_memory_mb": summary["peak_memory_mb"],
            "real_tokens": summary["real_tokens"], "steps": summary["steps"], "result": str(run)}  # fmt: skip


def train_standard(name: str, work: Path, tunesmith_tokens: int, tunesmith_steps: int) -> dict[str, Any]:
    cfg = run_config(name)
    kind = EXAMPLES[name].kind
    if kind == "classification":
        return _train_hf_classifier(cfg, work / f"{name}-standard", tunesmith_steps)
    return _train_trl(cfg, kind, work / f"{name}-standard", tunesmith_tokens, tunesmith_steps)


def _lora(cfg: Any, task_type: str) -> Any:
    from peft import LoraConfig

    method = cfg.method
    return LoraConfig(r=method.r, lora_alpha=method.alpha, lora_dropout=method.dropout,
                      target_modules=method.target_modules or "all-linear", task_type=task_type)  # fmt: skip


def _common_args(cfg: Any, out: Path, steps: int) -> dict[str, Any]:
    import torch

    train = cfg.train
    return {
        "output_dir": str(out), "max_steps": steps, "per_device_train_batch_size": train.batch_size,
        "gradient_accumulation_steps": train.grad_accum, "learning_rate": train.lr,
        "lr_scheduler_type": train.schedule, "warmup_steps": train.warmup_steps, "weight_decay": train.weight_decay,
        "max_grad_norm": train.max_grad_norm or 0.0, "seed": train.seed, "logging_steps": 1, "save_strategy": "no",
        "report_to": [], "disable_tqdm": True, "use_cpu": not torch.cuda.is_available(),
    }  # fmt: skip


def _train_trl(cfg: Any, kind: str, out: Path, tunesmith_tokens: int, tunesmith_steps: int) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from tunesmith.models.load import resolve_model

    folder = resolve_model(cfg.model).folder
    rows = records(cfg.data.train)
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    peft_config = _lora(cfg, "CAUSAL_LM")
    if kind == "dpo":
        dataset = Dataset.from_list([
            {"prompt": [{"role": "user", "content": r["prompt"]}],
             "chosen": [{"role": "assistant", "content": r["chosen"]}],
             "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows
        ])  # fmt: skip
        args = DPOConfig(**_common_args(cfg, out, tunesmith_steps), beta=cfg.task.beta, loss_type=[cfg.task.loss],
                         max_length=cfg.data.max_length)  # fmt: skip
        trainer: Any = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                  peft_config=peft_config)  # fmt: skip
    else:
        if kind == "sft":
            dataset = Dataset.from_list([
                {"prompt": [{"role": "user", "content": r["instruction"]}],
                 "completion": [{"role": "assistant", "content": r["output"]}]} for r in rows
            ])  # fmt: skip
        else:
            dataset = Dataset.from_list([{"text": r["text"]} for r in rows])
        args = SFTConfig(**_common_args(cfg, out, 1), max_length=cfg.data.max_length)
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=peft_config)  # fmt: skip
        # equal real tokens: TRL's steps from its own tokenization of these records
        per_record = sum(len(ids) for ids in trainer.train_dataset["input_ids"]) / len(trainer.train_dataset)
        per_step = per_record * cfg.train.batch_size * cfg.train.grad_accum
        trainer.args.max_steps = max(1, round(tunesmith_tokens / per_step))
    trainer.remove_callback(PrinterCallback)  # a dict per step on stdout
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    tokens = max((entry.get("num_tokens", 0) for entry in logs), default=0)
    trainer.model.save_pretrained(out / "adapter")
    return {"train_s": seconds, "peak_memory_mb": peak_mb(), "real_tokens": int(tokens), "steps": len(logs),
            "result": str(out / "adapter")}  # fmt: skip


def _train_hf_classifier(cfg: Any, out: Path, steps: int) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainingArguments,
    )

    from tunesmith.models.load import resolve_model
    from tunesmith.tasks.classification import label_names, read_labeled

    folder = resolve_model(cfg.model).folder
    labeled = read_labeled(cfg.data.train, cfg, True)
    labels = label_names(labeled)  # tunesmith's class order, so the scorer reads both heads alike
    tokenizer = AutoTokenizer.from_pretrained(folder)
    dataset = Dataset.from_list([
        {**tokenizer(r.text, truncation=True, max_length=cfg.data.max_length), "labels": labels.index(str(r.label))}
        for r in labeled
    ])  # fmt: skip
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}
    )
    from peft import get_peft_model

    model = get_peft_model(model, _lora(cfg, "SEQ_CLS"))
    trainer = Trainer(model=model, args=TrainingArguments(**_common_args(cfg, out, steps)), train_dataset=dataset,
                      data_collator=DataCollatorWithPadding(tokenizer))  # fmt: skip
    trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    model.save_pretrained(out / "adapter")
    tokens = sum(len(ids) for ids in dataset["input_ids"]) * steps * cfg.train.batch_size / len(dataset)
    return {"train_s": seconds, "peak_memory_mb": peak_mb(), "real_tokens": int(tokens), "steps": steps,
            "result": str(out / "adapter")}  # fmt: skip


# --- the scorer (one process, one code path for every side) ---


def score(name: str, standard: str, tunesmith_run: str) -> dict[str, dict[str, Any]]:
    from peft import PeftModel

    from tunesmith.runs.evaluation import Target, evaluate_model, load_target, read_run

    cfg = run_config(name)
    held = Path(cfg.data.eval)
    run = read_run(tunesmith_run)
    run.config.train.mixed_precision = "no"  # every side scored in fp32, whatever it trained in
    labels = run.labels or None
    plain = Target("base", run.config, None)
    results: dict[str, dict[str, Any]] = {}
    model, tokenizer = load_target(plain, labels)
    results["base"] = evaluate_model(model, tokenizer, run.config, held, labels)
    model, tokenizer = load_target(plain, labels)
    peft_model = PeftModel.from_pretrained(model, standard)
    results["standard"] = evaluate_model(peft_model, tokenizer, run.config, held, labels, peft_model.disable_adapter)
    results["tunesmith"] = _score_run(run, held, labels)
    if EXAMPLES[name].kind == "classification":
        # the scorer reads the held-out file alone, so this is the held-out split's own majority class
        results["majority"] = {"accuracy": results["base"]["majority_class_accuracy"]}
        results["zero-shot decoder"] = _zero_shot(cfg, held, labels or [])
    return {side: {k: v for k, v in metrics.items() if k != "examples"} for side, metrics in results.items()}


def _score_run(run: Any, held: Path, labels: list[str] | None) -> dict[str, Any]:
    from functools import partial

    from tunesmith.runs.evaluation import Target, evaluate_model, load_target, run_base

    model, tokenizer = load_target(Target("tunesmith", run.config, run), labels)
    return evaluate_model(model, tokenizer, run.config, held, labels, partial(run_base, model, run))


def _zero_shot(cfg: Any, held: Path, labels: list[str]) -> dict[str, Any]:
    """SmolLM2-135M-Instruct choosing the chapter whose name it finds likeliest as its answer, untrained."""
    from tunesmith.config import load_config
    from tunesmith.runs.evaluation import Target, evaluate_model, load_target

    decoder = load_config({
        "model": {"path": "smollm2-135m-instruct"}, "task": {"name": "classification", "head": "generate",
                                                             "prompt": ZERO_SHOT_PROMPT},
        "data": {"train": cfg.data.train, "eval": str(held), "max_length": 512}, "eval": {"batch_size": 8},
        "train": {"mixed_precision": "no"},
    })  # fmt: skip
    model, tokenizer = load_target(Target("zero-shot", decoder, None), labels)
    return evaluate_model(model, tokenizer, decoder, held, labels)


# --- the driver ---


def child(args: argparse.Namespace) -> Any:
    work = Path(args.work)
    if args.side == "tunesmith":
        return train_tunesmith(args.example, work)
    if args.side == "standard":
        return train_standard(args.example, work, args.tokens, args.steps)
    if args.side == "score":
        return score(args.example, args.standard, args.run)
    raise SystemExit(f"unknown side {args.side}")


def spawn(work: Path, side: str, example: str, *extra: str) -> Any:
    out = work / f"{example}-{side}.json"
    subprocess.run([sys.executable, __file__, "--child", side, "--example", example, "--work", str(work),
                    "--out", str(out), *extra], check=True)  # fmt: skip
    return json.loads(out.read_text())


def measure(example: str, work: Path) -> dict[str, Any]:
    print(f"[{example}] tunesmith", flush=True)
    ours = spawn(work, "tunesmith", example)
    print(f"[{example}] standard stack ({'transformers Trainer' if example == 'docs_chapters' else 'TRL'})", flush=True)
    theirs = spawn(work, "standard", example, "--tokens", str(ours["real_tokens"]), "--steps", str(ours["steps"]))
    print(f"[{example}] scoring base, standard and tunesmith on the held-out split", flush=True)
    scores = spawn(work, "score", example, "--standard", theirs["result"], "--run", ours["result"])
    return {"example": example, "tunesmith": ours, "standard": theirs, "scores": scores}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| example | held-out metric | base | standard stack | tunesmith | tunesmith − standard | "
             "train s (standard / tunesmith) | peak MB (standard / tunesmith) | real tokens (standard / tunesmith) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    notes = []
    for row in rows:
        example = EXAMPLES[row["example"]]
        scores, ours, theirs = row["scores"], row["tunesmith"], row["standard"]
        for metric in example.metrics:
            if metric not in scores["tunesmith"]:
                continue
            base, std, tun = (scores[s].get(metric, math.nan) for s in ("base", "standard", "tunesmith"))
            headline = metric == example.metrics[0]
            cost = (f"{theirs['train_s']:.0f} / {ours['train_s']:.0f} | {theirs['peak_memory_mb']:,.0f} / "
                    f"{ours['peak_memory_mb']:,.0f} | {theirs['real_tokens']:,} / {ours['real_tokens']:,}"
                    if headline else " | |")  # fmt: skip
            shown = f"{metric} (lower is better)" if metric in LOWER_IS_BETTER else metric
            lines.append(f"| {row['example'] if headline else ''} | {shown} | "
                         f"{base:.3f} | {std:.3f} | {tun:.3f} | {tun - std:+.3f} | {cost} |")  # fmt: skip
        if "zero-shot decoder" in scores:
            zero = scores["zero-shot decoder"]
            notes.append(f"{row['example']} baselines: the held-out split's majority class, accuracy "
                         f"{scores['majority']['accuracy']:.3f}; SmolLM2-135M-Instruct choosing the likeliest "
                         f"label zero-shot, accuracy {zero['accuracy']:.3f}, macro_f1 {zero['macro_f1']:.3f}")  # fmt: skip
    return "\n".join([*lines, "", *notes])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", default=",".join(EXAMPLES), help="comma-separated, from: " + ", ".join(EXAMPLES))
    parser.add_argument("--json", type=Path, help="write every measurement to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--example", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--standard", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.side = args.child
        Path(args.out).write_text(json.dumps(child(args)))
        return
    names = [n for n in args.examples.split(",") if n]
    unknown = [n for n in names if n not in EXAMPLES]
    if unknown:
        parser.error(f"--examples: unknown {', '.join(unknown)}; known: {', '.join(EXAMPLES)}")  # one line, exit 2
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(name, Path(tmp)) for name in names]
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
