"""Scale on paper: what `tunesmith estimate` says one process of a job needs, for a Llama-3.1-8B-shaped
model on H100s (80 GB): LoRA and full fine-tuning, alone and as one of 8 or 64 processes under DDP and
FSDP. The model is its config alone (no weights are read); the data is the demo's, packed to 1,024 tokens.

    make scale-on-paper     (or: .venv/bin/python benchmarks/scale_on_paper.py [--json OUT])

Two probes of 8B-wide blocks run on this CPU (LoRA without gradient checkpointing, full with it: about 10
minutes each on 2 cores); every other row reuses them, because one process's step does not change with the
job around it. Time is the estimator's FLOP count at 40% of the H100's bf16 peak for 1,000 steps, each
process taking 4 rows of 1,024 tokens per step (the global batch grows with the job); traffic between
processes is not modelled: figures on paper, not measurements.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tunesmith.config import load_config  # noqa: E402
from tunesmith.estimate.devices import find_device  # noqa: E402
from tunesmith.estimate.estimator import estimate_run  # noqa: E402
from tunesmith.models.load import load_tokenizer, resolve_model  # noqa: E402

LLAMA_8B = {  # Llama-3.1-8B's shape (config.json of the published model), vocabulary and all
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": False,
    "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2,
}
METHODS = {
    "LoRA r16": ({"name": "lora", "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"},
                 {"gradient_checkpointing": False}),
    "full": ({"name": "full"}, {"gradient_checkpointing": True}),
}
JOBS = [("ddp", 1), ("ddp", 8), ("fsdp", 8), ("fsdp", 64)]


def model_folder(where: Path) -> Path:
    """The 8B config beside SmolLM2's tokenizer (every id it makes is below the 8B vocabulary)."""
    folder = where / "llama-8b-shape"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_8B))
    source = resolve_model(load_config({"model": {"path": "smollm2-135m-instruct"}, "data": {"train": "x"}}).model)
    load_tokenizer(source, load_config({"model": {"path": "smollm2-135m-instruct"}, "data": {"train": "x"}}).model
                   ).save_pretrained(folder)
    return folder


def config(folder: Path, method: dict[str, Any], train: dict[str, Any], strategy: str) -> Any:
    demo = ROOT / "examples" / "demo"
    return load_config({
        "model": {"path": str(folder)},
        "task": {"name": "generation"},
        "data": {"train": str(demo / "train.jsonl"), "eval": str(demo / "eval.jsonl"), "max_length": 1024,
                 "packing": True, "checks": "off"},
        "method": method,
        "train": {"max_steps": 1000, "batch_size": 4, "mixed_precision": "bf16", **train},
        "distributed": {"strategy": strategy},
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    device = find_device("h100", None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = model_folder(Path(tmp))
        for name, (method, train) in METHODS.items():
            for strategy, processes in JOBS:
                found = estimate_run(config(folder, method, train, strategy), device, suggest=False,
                                     processes=processes)
                rows.append({"method": name, "strategy": strategy if processes > 1 else "one process",
                             "processes": processes, "peak_gb": found.peak_memory_mb / 1024, "fits": found.fits,
                             "train_s": found.train_s, "steps": found.steps,
                             "job_tokens_per_s": found.steps * found.tokens_per_step * processes / found.train_s,
                             "breakdown_gb": {k: v / 1024 for k, v in found.breakdown.items()},
                             "max_micro_batch": found.max_micro_batch, "checkpointed": found.checkpointed_blocks})
                print(json.dumps(rows[-1]), flush=True)
    print("\n| method | job | per process: weights / grads+optimizer / gathered / activations GB | peak GB | fits | "
          "1,000 steps | job tokens/s |")
    print("|---|---|---|---:|---|---:|---:|")
    for r in rows:
        b = r["breakdown_gb"]
        parts = (f"{b['weights']:.1f} / {b['gradients'] + b['optimizer'] + b.get('ddp_buckets', 0):.1f} / "
                 f"{b.get('fsdp_gathered', 0):.1f} / {b['activations']:.1f}")
        job = r["strategy"] if r["processes"] == 1 else f"{r['processes']} × {r['strategy']}"
        print(f"| {r['method']} | {job} | {parts} | {r['peak_gb']:.1f} | {'yes' if r['fits'] else 'no'} | "
              f"{r['train_s']:,.0f} s | {r['job_tokens_per_s']:,.0f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
