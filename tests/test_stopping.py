"""A model tuned on a few records learns to stop: generation ends with the end-of-turn token."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tests.conftest import write_jsonl
from tunesmith import train


def test_tuned_model_stops(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path, tokenizer: Any
) -> None:
    from transformers import AutoModelForCausalLM

    record = {"instruction": "Say hi", "output": "Hello there!"}
    data = write_jsonl(tmp_path / "one.jsonl", [record] * 8)
    config = make_config(
        data={"train": str(data), "eval": str(data)},
        method={"name": "full"},
        train={"max_steps": 60, "batch_size": 4, "lr": 1e-2, "schedule": "constant"},
        eval={"num_samples": 1, "max_new_tokens": 30},
    )
    result = train(config, quiet=True)
    assert result.summary["samples"][0]["after"] == "Hello there!"

    model = AutoModelForCausalLM.from_pretrained(result.final_dir, dtype=torch.float32)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Say hi"}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = model.generate(
        input_ids=ids, max_new_tokens=30, do_sample=False, eos_token_id=tokenizer.eos_token_id
    )
    new = out[0, ids.shape[1] :].tolist()
    assert new[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>") and len(new) < 30
