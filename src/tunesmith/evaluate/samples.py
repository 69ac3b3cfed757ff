"""Greedy answers to chat prompts, batched by length, stopping at the end-of-turn / EOS token or at any of
the configured stop strings."""

from __future__ import annotations

from typing import Any

import torch

from tunesmith.data.records import Conversation, Message
from tunesmith.data.templates import ChatRenderer
from tunesmith.engine.distributed import shared_map
from tunesmith.inference.engine import Job, batches_by_length, run_batch
from tunesmith.inference.sampling import Sampling


@torch.no_grad()
def generate_batch(
    model: Any,
    renderer: ChatRenderer,
    prompts: list[list[Message]],
    max_new_tokens: int,
    stop: list[str] | None = None,
    batch_size: int = 8,
) -> list[str]:
    """One greedy answer per prompt (a list of messages ending before the answer), through the one
    inference path (`inference.engine.run_batch`): what evaluation sees is what chat and serve answer."""
    tokenizer = renderer.tokenizer
    stop_ids = sorted({renderer.end_of_turn_id, tokenizer.eos_token_id} - {None})
    sampling = Sampling(temperature=0.0, max_new_tokens=max_new_tokens, stop=tuple(stop or ()))

    def answer(part: list[list[Message]]) -> list[str]:
        jobs = [
            Job(list(tokenizer(renderer.render(p, add_generation_prompt=True), add_special_tokens=False)["input_ids"]),
                sampling)
            for p in part
        ]
        for batch in batches_by_length(jobs, batch_size):
            run_batch(model, tokenizer, batch, stop_ids)
        return [job.text.strip() for job in jobs]

    return shared_map(answer, prompts, model)  # a job of several processes: each rank answers its share


def generate_answers(
    model: Any, renderer: ChatRenderer, conversations: list[Conversation], max_new_tokens: int
) -> list[str]:
    """Sample answers to the prompts of a few eval conversations (shown before and after training)."""
    return generate_batch(model, renderer, [c.prompt_messages() for c in conversations], max_new_tokens)


def prediction_rows(
    examples: list[tuple[str, str]], outputs: list[Any], correct: list[bool] | None = None
) -> list[dict[str, Any]]:
    """{input, reference, output[, correct]} per eval record: the run's predictions files and `tunesmith eval`."""
    rows: list[dict[str, Any]] = [
        {"input": given, "reference": reference, "output": output}
        for (given, reference), output in zip(examples, outputs, strict=False)
    ]
    for row, right in zip(rows, correct or [], strict=False):
        row["correct"] = right
    return rows
