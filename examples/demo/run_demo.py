"""`make demo`: a short LoRA fine-tune of SmolLM2-135M-Instruct as a bank's fraud assistant (data in this
folder, written by make_data.py), then what matters: on held-out cases, the share of answers that name the
right flag and the right next step, base vs tuned; answers the tuned model gets right and the base wrong,
and one it still gets wrong.

The demo owns its run folder (runs/demo) and replaces it on every run.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

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
    before, after = s["eval_before"], s["eval_after"]
    n = after["num_examples"]
    print("\n=== tunesmith demo: LoRA on SmolLM2-135M-Instruct, explaining fraud flags ===")
    findings = s["data_check"]
    print(
        f"data check       {f'{len(findings)} findings (see train.log)' if findings else 'clean: no findings'}"
    )
    print(
        f"task score       {before['task_score']:.2f} -> {after['task_score']:.2f}   "
        f"(share of {n} held-out answers with the right flag and next step)"
    )
    print(f"eval loss        {s['eval_loss_before']:.3f} -> {s['eval_loss_after']:.3f}")
    print(f"ROUGE-L          {before['rougeL']:.3f} -> {after['rougeL']:.3f}")
    print(
        f"trainable params {s['trainable_params']:,} of {s['total_params']:,} "
        f"({100 * s['trainable_params'] / s['total_params']:.2f}%)"
    )
    print(f"real tokens/s    {s['real_tokens_per_s']:.0f}")
    print(f"peak memory      {s['peak_memory_mb']:.0f} MB")
    print(f"steps / wall     {s['steps']} steps in {s['wall_s']:.0f} s")
    rows = list(zip(_read(result.run_dir, "before"), _read(result.run_dir, "after"), strict=True))
    fixed = [(b, a) for b, a in rows if a["correct"] and not b["correct"]][:2]
    still_wrong = [(b, a) for b, a in rows if not a["correct"]][:1]
    for title, pairs in (("tuned right, base wrong", fixed), ("tuned still wrong", still_wrong)):
        for base, tuned in pairs:
            print(f"\n--- {title}:")
            _show("question", base["input"])
            _show("base", base["output"])
            _show("tuned", tuned["output"])
            _show("reference", tuned["reference"])
    print(f"\nevery held-out answer: {result.run_dir}/predictions_after.jsonl; run folder: {result.run_dir}")
    return 0 if after["task_score"] > before["task_score"] else 1


def _read(run_dir: Path, when: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / f"predictions_{when}.jsonl").read_text().splitlines()]


def _show(label: str, text: str) -> None:
    head = f"  {label:>9}: "
    for n, line in enumerate((text or "(empty)").splitlines()):
        print(
            textwrap.fill(
                line,
                100,
                initial_indent=head if n == 0 else " " * len(head),
                subsequent_indent=" " * len(head),
            )
        )


if __name__ == "__main__":
    raise SystemExit(main())
