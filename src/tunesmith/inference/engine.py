"""The one inference path: a batch of prompts, each with its own sampling, stop rule and live text stream.

Chat, `generate`, the server and export verification all call `run_batch`. It drives transformers'
`generate` (KV cache, every architecture, peft prompt-learning methods) and adds what it lacks for
serving: per-row sampling settings and seeds (a logits processor that picks each row's token), per-row
stop strings, token budgets and cancellation (a stopping criterion), text streamed as it is decoded, the
finish reason, and the log-probability of every generated token under the model's own distribution.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from tunesmith.inference.sampling import RowSampler, Sampling
from tunesmith.modes import eval_mode


@dataclass
class Job:
    """One prompt to answer; the result fields fill in while it runs."""

    prompt_ids: list[int]
    sampling: Sampling = field(default_factory=Sampling)
    on_text: Callable[[str], None] | None = None  # called with each new piece of text
    cancel: threading.Event = field(default_factory=threading.Event)
    tokens: list[int] = field(default_factory=list)  # generated ids, the stop token included
    logprobs: list[float] = field(default_factory=list)  # log p(token) under the unwarped model
    text: str = ""
    finish_reason: str | None = None  # stop | length | cancelled
    _streamed: int = 0  # characters of `text` already handed to on_text

    @property
    def done(self) -> bool:
        return self.finish_reason is not None


class TextTracker:
    """Decodes a row's tokens as they come and says how much text is safe to stream: text that could
    still turn into a stop string, or half a UTF-8 character, is held back."""

    def __init__(self, tokenizer: Any, job: Job) -> None:
        self.tokenizer = tokenizer
        self.job = job
        self.stop = [s for s in job.sampling.stop if s]

    def update(self, ids: list[int]) -> bool:
        """Decode `ids` into job.text; True when a stop string was reached (text cut before it)."""
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        cuts = [text.find(s) for s in self.stop if s in text]
        if cuts:
            self.job.text = text[: min(cuts)]
            return True
        self.job.text = text
        return False

    def flush(self, final: bool) -> None:
        job, text = self.job, self.job.text
        safe = len(text)
        if not final:
            while safe and text[safe - 1] == "\ufffd":
                safe -= 1
            for stop in self.stop:  # longest tail of the text that is a prefix of a stop string
                for size in range(min(len(stop) - 1, safe), 0, -1):
                    if text[safe - size : safe] == stop[:size]:
                        safe -= size
                        break
        if safe > job._streamed and job.on_text is not None:
            job.on_text(text[job._streamed : safe])
        job._streamed = max(job._streamed, safe)


class _Picker:
    """Logits processor: each live row's token is chosen by that row's sampler and forced through
    generate's greedy step (every other logit set to -inf)."""

    def __init__(self, jobs: list[Job], samplers: list[RowSampler], pads: list[int]) -> None:
        self.jobs, self.samplers, self.pads = jobs, samplers, pads

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        logps = torch.log_softmax(scores.float(), dim=-1)  # (B, V)
        forced = torch.full_like(scores, float("-inf"))
        for row, (job, sampler) in enumerate(zip(self.jobs, self.samplers, strict=True)):
            if job.done:
                forced[row, 0] = 0.0  # generate pads finished rows anyway
                continue
            token = sampler.pick(input_ids[row : row + 1, self.pads[row] :], scores[row : row + 1])
            job.logprobs.append(float(logps[row, token]))
            forced[row, token] = 0.0
        return forced


class _Stopper:
    """Stopping criterion: per row, the end-of-turn token, a stop string, its token budget or a cancel."""

    def __init__(self, jobs: list[Job], trackers: list[TextTracker], stop_ids: set[int]) -> None:
        self.jobs, self.trackers, self.stop_ids = jobs, trackers, stop_ids

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_: Any) -> torch.Tensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        last = input_ids[:, -1].tolist()
        for row, (job, tracker) in enumerate(zip(self.jobs, self.trackers, strict=True)):
            if not job.done:
                self._advance(job, tracker, last[row])
            done[row] = job.done
        return done

    def _advance(self, job: Job, tracker: TextTracker, token: int) -> None:
        job.tokens.append(token)
        if token in self.stop_ids or tracker.update(job.tokens):
            job.finish_reason = "stop"
        elif job.cancel.is_set():
            job.finish_reason = "cancelled"
        elif len(job.tokens) >= job.sampling.max_new_tokens:
            job.finish_reason = "length"
        tracker.flush(final=job.done)


@torch.no_grad()
def run_batch(model: nn.Module, tokenizer: Any, jobs: list[Job], stop_ids: list[int]) -> list[Job]:
    """Answer every job in one left-padded batch; returns the jobs with their results filled in."""
    from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

    live = [job for job in jobs if not job.cancel.is_set()]
    for job in jobs:
        if job.cancel.is_set():
            job.finish_reason = "cancelled"
    if not live:
        return jobs
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    width = max(len(job.prompt_ids) for job in live)
    pads = [width - len(job.prompt_ids) for job in live]
    input_ids = torch.tensor([[pad_id] * p + job.prompt_ids for p, job in zip(pads, live, strict=True)])
    attention = torch.tensor([[0] * p + [1] * len(job.prompt_ids) for p, job in zip(pads, live, strict=True)])
    samplers = [RowSampler(job.sampling, device) for job in live]
    trackers = [TextTracker(tokenizer, job) for job in live]
    config = GenerationConfig(
        max_new_tokens=max(job.sampling.max_new_tokens for job in live),
        do_sample=False,
        pad_token_id=pad_id,
        eos_token_id=list(stop_ids),
    )
    with eval_mode(model):
        model.generate(  # type: ignore[operator]
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            generation_config=config,
            logits_processor=LogitsProcessorList([_Picker(live, samplers, pads)]),
            stopping_criteria=StoppingCriteriaList([_Stopper(live, trackers, set(stop_ids))]),
        )
    for job, tracker in zip(live, trackers, strict=True):
        if not job.done:  # generate ended on its own budget
            job.finish_reason = "length"
        tracker.flush(final=True)
    return jobs


def batches_by_length(jobs: list[Job], size: int) -> list[list[Job]]:
    """Jobs grouped into batches of similar prompt length (less padding)."""
    ordered = sorted(jobs, key=lambda job: len(job.prompt_ids))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]
