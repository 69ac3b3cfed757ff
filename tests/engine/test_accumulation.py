"""`batch_size: 4` equals `batch_size: 2, grad_accum: 2`: same loss and gradients (token-normalised)."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tunesmith import train
from tunesmith.data.batches import BatchPlan
from tunesmith.data.packing import build_rows, collate
from tunesmith.data.records import Conversation, Message, TokenizedSample
from tunesmith.data.templates import build_renderer, tokenize_conversation
from tunesmith.engine.loop import accumulate_gradients
from tunesmith.errors import UserError
from tunesmith.objectives.logprobs import TrainedTokenLM


def step_gradients(
    model: TrainedTokenLM, plan: BatchPlan, packed: bool
) -> tuple[float, dict[str, torch.Tensor]]:
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    model.zero_grad(set_to_none=True)
    batches = [collate(m, 0, packed) for m in plan.micro_batches(plan.step_at(0))]
    loss, _ = accumulate_gradients(acc, model, batches)
    return loss, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("packed", [False, True])
def test_accumulated_gradients_equal_large_batch(tiny_llama: Path, tokenizer: Any, packed: bool) -> None:
    from transformers import AutoModelForCausalLM

    renderer = build_renderer(tokenizer)
    samples = [
        tokenize_conversation(
            Conversation(
                [Message("user", "q " * (1 + i * 3)), Message("assistant", "a " * (1 + (i * 7) % 11))],
                f"m:{i}",
            ),
            renderer,
            False,
        )
        for i in range(12)
    ]
    rows = build_rows(samples, 64, packing=packed)
    model = TrainedTokenLM(AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32))
    big = BatchPlan(rows, batch_size=4, grad_accum=1, seed=1, group_by_length=not packed)
    small = BatchPlan(rows, batch_size=2, grad_accum=2, seed=1, group_by_length=not packed)
    assert sorted(big.step_at(0)) == sorted(small.step_at(0))
    loss_big, grads_big = step_gradients(model, big, packed)
    loss_small, grads_small = step_gradients(model, small, packed)
    assert loss_big == pytest.approx(loss_small, abs=1e-5)
    assert grads_big.keys() == grads_small.keys() and grads_big
    for name in grads_big:
        torch.testing.assert_close(grads_big[name], grads_small[name], atol=1e-5, rtol=1e-5, msg=name)


def test_training_runs_match(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    base = make_config(data={"packing": False}, method={"name": "full"}, train={"max_steps": 3, "lr": 1e-3})
    a = train(base, ["train.batch_size=4", "output.name=a"], quiet=True)
    b = train(base, ["train.batch_size=2", "train.grad_accum=2", "output.name=b"], quiet=True)
    losses_a = [m["loss"] for m in a.metrics if "loss" in m]
    losses_b = [m["loss"] for m in b.metrics if "loss" in m]
    assert len(losses_a) == 3
    assert losses_a == pytest.approx(losses_b, abs=1e-5)


def test_ranks_share_each_step_with_no_row_lost_or_repeated() -> None:
    rows: list[Any] = [[TokenizedSample([i] * (1 + i % 5), [1] * (1 + i % 5), f"r{i}")] for i in range(22)]
    one = BatchPlan(rows, batch_size=4, grad_accum=1, seed=3, group_by_length=False)
    two = BatchPlan(rows, batch_size=2, grad_accum=1, seed=3, group_by_length=False, num_processes=2)
    assert two.rows_per_step == one.rows_per_step == 4
    assert two.steps_per_epoch == 5 and one.steps_per_epoch == 6  # 22 rows: the short step is left out
    assert two.dropped_per_epoch == 2 and one.dropped_per_epoch == 0
    for step in range(10):
        shares = [two.micro_batches(two.step_at(step), rank) for rank in (0, 1)]
        assert [len(share) for share in shares] == [1, 1]
        ranks_rows = [id(row) for share in shares for batch in share for row in batch]
        same = step if step < 5 else step + 1  # the same epoch's step of one process (it keeps the short one)
        assert ranks_rows == [id(row) for batch in one.micro_batches(one.step_at(same)) for row in batch]
    lonely = BatchPlan(rows[:1], batch_size=2, grad_accum=1, seed=3, group_by_length=False, num_processes=2)
    with pytest.raises(UserError, match="gives 1 rows: fewer micro-batches of 2 than the 2 processes"):
        _ = lonely.steps_per_epoch
