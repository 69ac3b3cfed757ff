"""Does the search find a better config than the default, measured where the search never looked?

    make bench-tune     (or: .venv/bin/python benchmarks/tune_chapters.py [--trials 12] [--out DIR])

The real-text classification example (examples/real_text/docs_chapters.yaml: which chapter of the Python
Library Reference documents a docstring's object; all-MiniLM-L6-v2 + LoRA):
1. `tunesmith tune` searches learning rate, LoRA rank, steps and batch size (chapters_space.yaml) for the best
   macro-F1 on a validation split carved from the training data (tune_chapters.yaml); the default config is
   enqueued as the first trial, so the search knows where it starts;
2. the default config and best.yaml are then each trained on the whole training data and scored on the
   held-out split (other modules), which no trial saw.
Printed: each trial's validation macro-F1, then default vs best on the held-out split, and the time spent.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "real_text"
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    from tunesmith import train
    from tunesmith.tune.command import build_search, tune
    from tunesmith.tune.search import open_study

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temporary folder)")
    args = parser.parse_args()
    out = (args.out or Path(tempfile.mkdtemp(prefix="tune-chapters-"))).resolve()

    started = time.time()
    search = build_search(EXAMPLE / "tune_chapters.yaml", EXAMPLE / "chapters_space.yaml", trials=args.trials,
                          metric="macro_f1", pruner="none")
    search.config["output"] = {"dir": str(out), "name": "chapters-tune"}
    study = open_study(search)
    if not study.get_trials():
        study.enqueue_trial({"train.lr": 2.0e-3, "method.r": 8, "train.max_steps": 60, "train.batch_size": 16})
    study = tune(search)
    searched = time.time() - started
    default_validation = study.get_trials()[0].value

    held_out = str(EXAMPLE / "docs_chapters" / "eval.jsonl")
    scores = {}
    for name, config, extra in (
        ("default", EXAMPLE / "docs_chapters.yaml", []),
        ("best", out / "chapters-tune" / "best.yaml", [f"data.eval={held_out}", "data.eval_split=null"]),
    ):
        result = train(config, [*extra, f"output.dir={out}", f"output.name={name}-heldout", "eval.num_samples=0",
                                "eval.forgetting=false"], quiet=True)
        scores[name] = result.summary["eval_after"]["macro_f1"]
    print(f"\nsearch: {len(study.get_trials())} trials in {searched / 60:.1f} min; validation macro-F1 "
          f"default {default_validation:.3f}, best {study.best_value:.3f} ({study.best_params})")
    print("| held-out split (94 docstrings of other modules) | default config | best config | best − default |")
    print("|---|---:|---:|---:|")
    print(f"| macro-F1 | {scores['default']:.3f} | {scores['best']:.3f} | {scores['best'] - scores['default']:+.3f} |")
    print(json.dumps({"trials": len(study.get_trials()), "search_min": round(searched / 60, 1),
                      "validation": {"default": default_validation, "best": study.best_value},
                      "held_out": scores, "best_params": study.best_params}))


if __name__ == "__main__":
    main()
