"""Loop options that must not change the numbers: gradient checkpointing, and the loss on trained
positions only (compared with transformers' own full-logits loss)."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tunesmith import train
from tunesmith.data.packing import collate
from tunesmith.data.records import Conversation, Message
from tunesmith.data.templates import build_renderer, tokenize_conversation
from tunesmith.objectives.logprobs import TrainedTokenLM


def test_gradient_checkpointing_gives_same_losses(make_config: Callable[..., dict[str, Any]]) -> None:
    config = make_config(method={"name": "full"}, train={"max_steps": 3, "lr": 1e-3})
    plain = train(config, ["output.name=plain"], quiet=True)
    ckpt = train(config, ["output.name=ckpt", "train.gradient_checkpointing=true"], quiet=True)
    losses = [[m["loss"] for m in r.metrics if "loss" in m] for r in (plain, ckpt)]
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


def test_trained_position_loss_matches_transformers(tiny_llama: Path, tokenizer: Any) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    renderer = build_renderer(tokenizer)
    rows = [
        [
            tokenize_conversation(
                Conversation([Message("user", "q " * n), Message("assistant", "a " * n)], "m"),
                renderer,
                False,
            )
        ]
        for n in (2, 5, 9)
    ]
    batch = collate(rows, tokenizer.pad_token_id, packed=False)
    with torch.no_grad():
        ours = float(TrainedTokenLM(model)(**batch.model_inputs())) / batch.num_trained
        reference = float(
            model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss
        )
    assert ours == pytest.approx(reference, abs=1e-5)
