"""Integration on the real SmolLM2-135M-Instruct (packaged GGUF): a few LoRA steps lower the eval
loss, and the adapter loads with plain peft. Slow (about a minute on 2 cores); runs in CI too."""

from pathlib import Path

import pytest
import torch

from tests.conftest import write_jsonl

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"


@pytest.mark.slow
def test_lora_on_smollm2_lowers_eval_loss(tmp_path: Path, smol_folder: Path) -> None:
    import json

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tunesmith import train

    held = [json.loads(line) for line in (DEMO / "eval.jsonl").read_text().splitlines()[:6]]
    config = {
        "model": {"path": "smollm2-135m-instruct"},
        "data": {
            "train": str(DEMO / "train.jsonl"),
            "eval": str(write_jsonl(tmp_path / "eval.jsonl", held)),
            "max_length": 256,
        },
        "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
        "train": {"max_steps": 4, "batch_size": 2, "lr": 2e-3, "warmup_steps": 0},
        "eval": {"num_samples": 1, "max_new_tokens": 24},
        "output": {"dir": str(tmp_path / "runs"), "name": "smol"},
    }
    result = train(config, quiet=True)
    summary = result.summary
    assert summary["eval_loss_after"] < summary["eval_loss_before"] - 0.3
    assert summary["total_params"] > 130_000_000 and summary["real_tokens_per_s"] > 0

    base = AutoModelForCausalLM.from_pretrained(smol_folder, dtype=torch.float32)
    adapted = PeftModel.from_pretrained(base, result.final_dir).eval()
    ids = torch.tensor([[1, 9690, 198, 2683, 359, 253]])
    with torch.no_grad():
        assert torch.isfinite(adapted(input_ids=ids).logits).all()
