"""Sample answers: greedy generation from the prompts of a few eval conversations."""

from __future__ import annotations

from typing import Any

import torch

from tunesmith.data.records import Conversation
from tunesmith.data.templates import ChatRenderer


@torch.no_grad()
def generate_answers(
    model: Any, renderer: ChatRenderer, conversations: list[Conversation], max_new_tokens: int
) -> list[str]:
    """Greedy answers, stopping at the end-of-turn or EOS token."""
    tokenizer = renderer.tokenizer
    stop_ids = sorted({renderer.end_of_turn_id, tokenizer.eos_token_id} - {None})
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    answers = []
    for conv in conversations:
        prompt = renderer.render(conv.prompt_messages(), add_generation_prompt=True)
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=stop_ids,
            pad_token_id=tokenizer.pad_token_id,
        )
        answers.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip())
    model.train(was_training)
    return answers
