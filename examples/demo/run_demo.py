"""`make demo`: a short LoRA instruction fine-tune of SmolLM2-135M-Instruct on a bank's fraud-flag
explanations (bundled in this folder), then the numbers that matter and answers before vs after.

The demo owns its run folder (runs/demo) and replaces it on every run.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from tunesmith import train
from tunesmith.allocator import use_tcmalloc
from tunesmith.errors import UserError


def main() -> int:
    use_tcmalloc()  # less resident memory than the C library's malloc (tunesmith/allocator.py)
    config = Path(__file__).with_name("config.yaml")
    try:
        result = train(config, sys.argv[1:], overwrite=True)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s = result.summary
    print("\n=== tunesmith demo: LoRA on SmolLM2-135M-Instruct, fraud-flag explanations ===")
    print(f"eval loss        {s['eval_loss_before']:.4f} -> {s['eval_loss_after']:.4f}")
    print(
        f"trainable params {s['trainable_params']:,} of {s['total_params']:,} "
        f"({100 * s['trainable_params'] / s['total_params']:.2f}%)"
    )
    print(
        f"real tokens/s    {s['real_tokens_per_s']:.0f}  (padding trained: {100 * s['padding_fraction']:.1f}%)"
    )
    print(f"peak memory      {s['peak_memory_mb']:.0f} MB")
    print(f"steps / wall     {s['steps']} steps in {s['wall_s']:.0f} s")
    for n, sample in enumerate(s["samples"], start=1):
        print(f"\n--- sample {n}: {sample['prompt']}")
        for label in ("before", "after", "reference"):
            head = f"  {label:>9}: "
            print(
                textwrap.fill(
                    sample[label] or "(empty)", 100, initial_indent=head, subsequent_indent=" " * len(head)
                )
            )
    print(f"\nrun folder: {result.run_dir}")
    return 0 if s["eval_loss_after"] < s["eval_loss_before"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
