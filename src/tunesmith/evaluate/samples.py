"""Greedy answers to chat prompts, batched with left padding, stopping at the end-of-turn / EOS token
or at any of the configured stop strings."""

from __future__ import annotations

from typing import Any

import torch

from tunesmith.data.records import Conversation, Message
from tunesmith.data.templates import ChatRenderer
from tunesmith.modes import eval_mode


@torch.no_grad()
def generate_batch(
    model: Any,
    renderer: ChatRenderer,
    prompts: list[list[Message]],
    max_new_tokens: int,
    stop: list[str] | None = None,
    batch_size: int = 8,
) -> list[str]:
    """One greedy answer per prompt (a list of messages ending before the answer)."""
    tokenizer = renderer.tokenizer
    stop_ids = sorted({renderer.end_of_turn_id, tokenizer.eos_token_id} - {None})
    texts = [renderer.render(p, add_generation_prompt=True) for p in prompts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths: less padding
    answers: dict[int, str] = {}
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # new tokens follow every prompt directly
    device = next(model.parameters()).device
    try:
        with eval_mode(model):
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                enc = tokenizer(
                    [texts[i] for i in chunk], add_special_tokens=False, padding=True, return_tensors="pt"
                )
                extra = {"stop_strings": stop, "tokenizer": tokenizer} if stop else {}
                out = model.generate(
                    input_ids=enc["input_ids"].to(device),
                    attention_mask=enc["attention_mask"].to(device),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    eos_token_id=stop_ids,
                    pad_token_id=tokenizer.pad_token_id,
                    **extra,
                )
                new = out[:, enc["input_ids"].shape[1] :]
                for i, ids in zip(chunk, new, strict=True):
                    answers[i] = cut_at_stop(tokenizer.decode(ids, skip_special_tokens=True), stop or [])
    finally:
        tokenizer.padding_side = side
    return [answers[i] for i in range(len(texts))]


def cut_at_stop(text: str, stop: list[str]) -> str:
    cuts = [text.find(s) for s in stop if s and s in text]
    return (text[: min(cuts)] if cuts else text).strip()


def generate_answers(
    model: Any, renderer: ChatRenderer, conversations: list[Conversation], max_new_tokens: int
) -> list[str]:
    """Sample answers to the prompts of a few eval conversations (shown before and after training)."""
    return generate_batch(model, renderer, [c.prompt_messages() for c in conversations], max_new_tokens)
