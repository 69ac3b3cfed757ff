"""Packing: bins respect the limit, and a packed batch has exactly the per-token loss of the same
samples unpacked (attention never crosses a sample boundary)."""

from pathlib import Path
from typing import Any

import pytest
import torch

from tunesmith.data.packing import build_rows, collate, pack_bins
from tunesmith.data.records import Conversation, Message
from tunesmith.data.templates import build_renderer, tokenize_conversation
from tunesmith.objectives.logprobs import TrainedTokenLM


def test_pack_bins_fit_and_cover() -> None:
    lengths = [5, 9, 3, 7, 2, 8, 1, 6, 4, 10]
    bins = pack_bins(lengths, 12)
    assert sorted(i for b in bins for i in b) == list(range(10))
    assert all(sum(lengths[i] for i in b) <= 12 for b in bins)
    assert len(bins) == 5  # 55 tokens need at least 5 bins of 12


def samples(tokenizer: Any, count: int) -> list[Any]:
    renderer = build_renderer(tokenizer)
    out = []
    for i in range(count):
        conv = Conversation(
            [
                Message("user", f"question {i} " + "detail " * (i % 5)),
                Message("assistant", f"answer {i} " + "more " * i),
            ],
            f"m:{i}",
        )
        out.append(tokenize_conversation(conv, renderer, train_on_prompt=(i % 3 == 0)))
    return out


@pytest.mark.parametrize("family", ["tiny_llama", "tiny_gpt2"])
def test_packed_loss_equals_unpacked(family: str, request: pytest.FixtureRequest, tokenizer: Any) -> None:
    from transformers import AutoModelForCausalLM

    folder: Path = request.getfixturevalue(family)
    model = TrainedTokenLM(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)).eval()
    batch_samples = samples(tokenizer, 7)
    pad = tokenizer.pad_token_id
    packed_rows = build_rows(batch_samples, max_length=256, packing=True)
    assert len(packed_rows) < len(batch_samples)  # really packed
    packed = collate(packed_rows, pad, packed=True)
    unpacked = collate(build_rows(batch_samples, 256, packing=False), pad, packed=False)
    assert packed.num_trained == unpacked.num_trained == sum(s.num_trained for s in batch_samples)
    with torch.no_grad():
        packed_loss = float(model(**packed.model_inputs())) / packed.num_trained
        unpacked_loss = float(model(**unpacked.model_inputs())) / unpacked.num_trained
        one_by_one = sum(
            float(model(**collate([[s]], pad, packed=False).model_inputs())) for s in batch_samples
        )
    assert packed_loss == pytest.approx(unpacked_loss, abs=1e-5)
    assert packed_loss == pytest.approx(one_by_one / packed.num_trained, abs=1e-5)


def test_packed_attention_does_not_cross_samples(tiny_llama: Path, tokenizer: Any) -> None:
    from transformers import AutoModelForCausalLM

    model = TrainedTokenLM(AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)).eval()
    first, second = samples(tokenizer, 2)
    changed = type(first)([t + 1 for t in first.input_ids], [-100] * len(first.labels), first.source)
    plain_first = type(first)(first.input_ids, [-100] * len(first.labels), first.source)
    with torch.no_grad():
        a = float(model(**collate([[plain_first, second]], 0, packed=True).model_inputs()))
        b = float(model(**collate([[changed, second]], 0, packed=True).model_inputs()))
    assert a == pytest.approx(b, abs=1e-6)  # only `second` is trained; its loss ignores the first sample
