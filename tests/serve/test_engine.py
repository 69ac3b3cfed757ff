"""The one inference path: batched answers equal plain `model.generate` one by one, seeded sampling does
not depend on what it is batched with, stop strings cut the text (and the stream never shows them),
budgets and cancellation end a row with the right finish reason."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from tunesmith.data.records import Message
from tunesmith.inference.engine import Job, TextTracker, run_batch
from tunesmith.inference.sampling import Sampling
from tunesmith.serve.target import load_served


@pytest.fixture(scope="module")
def yes_run(tiny_runs: dict[str, Path]):  # type: ignore[no-untyped-def]
    return load_served(str(tiny_runs["yes"]), {"no": str(tiny_runs["no"])})


def test_batched_greedy_equals_plain_generate_one_by_one(yes_run) -> None:  # type: ignore[no-untyped-def]
    target = yes_run
    model = target.use("yes")
    prompts = [target.chat_ids([Message("user", p)]) for p in ("Hi", "Tell me a long story about the sea", "x")]
    jobs = run_batch(model, target.tokenizer, [Job(p, Sampling(max_new_tokens=12)) for p in prompts], target.stop_ids)
    for prompt, job in zip(prompts, jobs, strict=True):
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False,
                                 eos_token_id=target.stop_ids, pad_token_id=target.tokenizer.pad_token_id)
        reference = out[0, len(prompt):].tolist()
        assert job.tokens == reference
        assert job.finish_reason == ("stop" if reference[-1] in target.stop_ids else "length")
        assert len(job.logprobs) == len(job.tokens) and all(lp <= 0 for lp in job.logprobs)
    assert jobs[0].text.startswith("Yes")


def test_seeded_sampling_is_independent_of_the_batch(yes_run) -> None:  # type: ignore[no-untyped-def]
    target = yes_run
    model = target.use(target.base_name)  # the random base: sampling has real choices to make
    prompt = target.chat_ids([Message("user", "Hello")])
    other = target.chat_ids([Message("user", "Something much longer to pad the batch with")])
    seeded = Sampling(temperature=1.0, top_p=0.9, top_k=50, max_new_tokens=10, seed=7)
    alone = run_batch(model, target.tokenizer, [Job(prompt, seeded)], [])[0]
    batched = run_batch(model, target.tokenizer, [Job(other, Sampling(temperature=0.7, seed=1, max_new_tokens=10)),
                                                  Job(prompt, seeded)], [])[1]
    assert alone.tokens == batched.tokens
    different = run_batch(model, target.tokenizer, [Job(prompt, Sampling(temperature=1.0, seed=8, max_new_tokens=10))], [])
    assert different[0].tokens != alone.tokens


def test_stop_strings_cut_the_text_and_never_stream(yes_run) -> None:  # type: ignore[no-untyped-def]
    target = yes_run
    model = target.use("yes")
    streamed: list[str] = []
    job = Job(target.chat_ids([Message("user", "Say something.")]),
              Sampling(max_new_tokens=30, stop=("certainly",)), on_text=streamed.append)
    run_batch(model, target.tokenizer, [job], target.stop_ids)
    assert job.finish_reason == "stop"
    assert job.text == "Yes, "
    assert "".join(streamed) == job.text and len(streamed) >= 2


def test_text_tracker_holds_back_partial_stop_strings_and_characters() -> None:
    class Decoder:
        def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
            return "".join(["ab", "<|", "e", "\ufffd"][i] for i in ids)

    shown: list[str] = []
    job = Job([0], Sampling(stop=("<|end",)), on_text=shown.append)
    tracker = TextTracker(Decoder(), job)
    for upto in range(1, 5):
        assert not tracker.update(list(range(upto)))
        tracker.flush(final=False)
    assert "".join(shown) == "ab"  # "<|e" could still become "<|end"; "\ufffd" is half a character
    tracker.flush(final=True)
    assert "".join(shown) == "ab<|e\ufffd"


def test_budget_and_cancel_end_rows_on_their_own(yes_run) -> None:  # type: ignore[no-untyped-def]
    target = yes_run
    model = target.use(target.base_name)
    prompt = target.chat_ids([Message("user", "Go on")])
    cancel_after: list[str] = []
    cancelled = Job(prompt, Sampling(max_new_tokens=50))
    cancelled.on_text = lambda text: (cancel_after.append(text), cancelled.cancel.set())
    short = Job(prompt, Sampling(max_new_tokens=3))
    long = Job(prompt, Sampling(max_new_tokens=20))
    run_batch(model, target.tokenizer, [cancelled, short, long], [])
    assert short.finish_reason == "length" and len(short.tokens) == 3
    assert long.finish_reason == "length" and len(long.tokens) == 20
    assert cancelled.finish_reason == "cancelled" and len(cancelled.tokens) < 50
    already = Job(prompt, Sampling(max_new_tokens=5), cancel=threading.Event())
    already.cancel.set()
    assert run_batch(model, target.tokenizer, [already], [])[0].finish_reason == "cancelled"


def test_sampling_settings_are_checked() -> None:
    from tunesmith.errors import UserError

    for bad in ({"temperature": -1}, {"top_p": 0}, {"max_new_tokens": 0}, {"top_k": -2}):
        with pytest.raises(UserError):
            Sampling(**bad)  # type: ignore[arg-type]


def test_model_ids_and_base_switch(yes_run) -> None:  # type: ignore[no-untyped-def]
    target = yes_run
    assert target.model_ids == ["yes", "no", target.base_name]
    from tunesmith.errors import UserError

    with pytest.raises(UserError, match="unknown model 'maybe'"):
        target.use("maybe")


def test_scheduler_refuses_beyond_its_queue_and_batches_by_adapter(yes_run) -> None:  # type: ignore[no-untyped-def]
    """Admission counts queued and running jobs; one batch never mixes adapters."""
    from tunesmith.serve.scheduler import QueueFull, Scheduler, Ticket

    target = yes_run
    gate, seen = threading.Event(), []
    original = target.use

    def gated_use(model_id: str):  # type: ignore[no-untyped-def]
        gate.wait(30)  # hold the worker: everything submitted now stays in flight
        seen.append(model_id)
        return original(model_id)

    target.use = gated_use
    try:
        scheduler = Scheduler(target, max_batch=4, max_queue=5)
        done = threading.Semaphore(0)
        prompt = target.chat_ids([Message("user", "Say something.")])
        jobs = [Job(prompt, Sampling(max_new_tokens=4)) for _ in range(5)]
        ids = ["yes", "no", "yes", "no", "yes"]
        for model_id, job in zip(ids, jobs, strict=True):
            scheduler.submit([Ticket(model_id, job, lambda _job: done.release())])
        with pytest.raises(QueueFull, match="5 jobs are queued or running"):
            scheduler.submit([Ticket("yes", Job(prompt), lambda _job: None)])
        gate.set()
        for _ in jobs:
            assert done.acquire(timeout=60)
        assert seen == ["yes", "no"] and scheduler.in_flight == 0  # two batches: the three yes, the two no
        for model_id, job in zip(ids, jobs, strict=True):
            assert job.text.startswith("Yes" if model_id == "yes" else "No")
    finally:
        target.use = original
