"""Every example in examples/ shows its stated effect on a reduced step count: the task metric moves
the right way on held-out data, by a stated margin on the real-text examples. The sentiment example is
also the real-encoder check: all-MiniLM-L6-v2 must beat the majority-class rate on held-out reviews.
Slow (SmolLM2 on 2 cores); runs in CI too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunesmith import train

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FAST = ["train.grad_accum=1", "eval.num_samples=0", "eval.generation_limit=8"]

# example config (a folder's config.yaml, or a .yaml) → (overrides, the metric, whether higher is better)
CASES: dict[str, tuple[list[str], str, bool]] = {
    "sentiment": (["train.max_steps=30"], "accuracy", True),
    "legal_summarization": (["train.max_steps=8", "eval.max_new_tokens=48"], "rougeL", True),
    "brand_tone": (["train.max_steps=8", "eval.max_new_tokens=40"], "rougeL", True),
    "support_chat": (["train.max_steps=6"], "eval_loss", False),
    "demo": (["train.max_steps=6", "eval.every_steps=null"], "eval_loss", False),
    "real_text/docs_chapters.yaml": ([], "macro_f1", True),
    "real_text/docs_text.yaml": (["train.max_steps=6", "eval.forgetting=false"], "eval_loss", False),
    "real_text/docs_dpo.yaml": (["train.max_steps=8"], "eval_loss", False),
}
# the real-text examples must beat the base model by this much on their held-out metric (eval loss in nats
# per token; for DPO the held-out DPO loss, ln 2 before training: below it, the margin on unseen pairs
# points the right way). Not the model's own DPO choice accuracy: at 8 steps it rose by 0.10 on one machine
# and by 0.02 on CI's, too close to the noise of 48 pairs to assert
MARGINS = {"real_text/docs_chapters.yaml": 0.2, "real_text/docs_text.yaml": 0.05, "real_text/docs_dpo.yaml": 0.02}


@pytest.mark.slow
@pytest.mark.parametrize("example", list(CASES))
def test_example_shows_its_effect(example: str, tmp_path: Path) -> None:
    overrides, metric, higher = CASES[example]
    config = EXAMPLES / example if example.endswith(".yaml") else EXAMPLES / example / "config.yaml"
    result = train(
        config,
        [*FAST, *overrides, f"output.dir={tmp_path}"],
        quiet=True,
    )
    before: dict[str, Any] = result.summary["eval_before"]
    after: dict[str, Any] = result.summary["eval_after"]
    margin = MARGINS.get(example, 0.0)
    gain = after[metric] - before[metric] if higher else before[metric] - after[metric]
    assert gain > margin, (before, after)
    if example == "sentiment":
        support = [c["support"] for c in after["per_class"].values()]
        majority_rate = max(support) / sum(support)  # always answering the most common held-out class
        assert after["accuracy"] > majority_rate + 0.2
