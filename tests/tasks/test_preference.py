"""DPO family, KTO and reward models through `train()` on the tiny Llama: every loss lowers its eval
loss and prefers the chosen answers afterwards; references come from the base with the method off;
bad preference data gets one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import write_jsonl
from tunesmith import train
from tunesmith.errors import UserError

PAIRS = [
    {
        "prompt": f"Customer {i}: is my card blocked?",
        "chosen": "Your card works. Check the app for details.",
        "rejected": "dunno",
    }
    for i in range(24)
]
LORA = {"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0}


def preference_config(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path, task: dict[str, Any], **sections: Any
) -> dict[str, Any]:
    config = make_config(
        task=task,
        data={
            "train": str(write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:20])),
            "eval": str(write_jsonl(tmp_path / "held.jsonl", PAIRS[20:])),
        },
        method=sections.pop("method", LORA),
        train={"max_steps": 8, "batch_size": 4, "lr": 1e-2},
    )
    return config


@pytest.mark.parametrize(
    ("loss", "method"),
    [
        ("sigmoid", LORA),
        ("cdpo", LORA),
        ("ipo", {"name": "full"}),
        ("simpo", LORA),
        ("orpo", LORA),
        ("hinge", LORA),
        ("robust", LORA),
        ("sigmoid", {"name": "adapter", "reduction_factor": 4}),
    ],
)
def test_dpo_losses_learn_the_preference(
    loss: str, method: dict[str, Any], make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    task = {"name": "dpo", "loss": loss, "beta": 2.0 if loss == "simpo" else 0.1}
    result = train(preference_config(make_config, tmp_path, task, method=method), quiet=True)
    summary = result.summary
    assert summary["eval_loss_after"] < summary["eval_loss_before"]
    assert summary["eval_pref_accuracy_after"] == 1.0
    assert summary["eval_reward_margin_after"] > 0
    assert 0.0 <= summary["eval_choice_accuracy_before"] <= 1.0  # the base model's own choice
    if loss not in ("simpo", "orpo"):  # policy = reference at the start: no preference yet
        assert summary["eval_pref_accuracy_before"] == 0.0
        at_start = {"ipo": 25.0, "hinge": 1.0}.get(loss, 0.6931)  # every loss at h = 0
        assert summary["eval_loss_before"] == pytest.approx(at_start, rel=1e-3)
        assert (result.run_dir / "reference_logps.json").is_file()


def test_reference_is_the_base_model(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path, tiny_llama: Path
) -> None:
    """With LoRA the reference log-probs are the base model's, computed once and cached."""
    from transformers import AutoModelForCausalLM

    from tunesmith.data.packing import collate
    from tunesmith.objectives.logprobs import TrainedTokenLM
    from tunesmith.tasks import TASKS

    config = preference_config(make_config, tmp_path, {"name": "dpo"})
    result = train(config, quiet=True)
    cached = json.loads((result.run_dir / "reference_logps.json").read_text())
    from tunesmith.config import load_config
    from tunesmith.data.templates import build_renderer
    from tunesmith.models.load import load_tokenizer, resolve_model

    cfg = load_config(result.run_dir / "config.yaml")
    tokenizer = load_tokenizer(resolve_model(cfg.model), cfg.model)
    data = TASKS.get("dpo").prepare(cfg, tokenizer, build_renderer(tokenizer))
    base = TrainedTokenLM(AutoModelForCausalLM.from_pretrained(tiny_llama).eval())
    batch = collate([[s] for s in data.train[:4]], 0, packed=False)
    with torch.no_grad():
        expected, _ = base.answer_logps(batch.input_ids, batch.labels, batch.attention_mask)
    assert cached[:4] == pytest.approx(expected.tolist(), abs=1e-4)


def test_kto_on_unpaired_feedback(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    rows = [
        {"prompt": p["prompt"], "completion": p["chosen"] if i % 2 else p["rejected"], "label": bool(i % 2)}
        for i, p in enumerate(PAIRS)
    ]
    config = preference_config(make_config, tmp_path, {"name": "dpo", "loss": "kto"})
    config["data"] = {
        "train": str(write_jsonl(tmp_path / "kto.jsonl", rows)),
        "eval_split": 0.2,
        "max_length": 128,
    }
    summary = train(config, quiet=True).summary
    assert summary["eval_loss_after"] < summary["eval_loss_before"]


@pytest.mark.parametrize("model", ["tiny", "minilm-l6"])
def test_reward_model_learns_pairs(
    model: str, make_config: Callable[..., dict[str, Any]], tmp_path: Path, tiny_llama: Path
) -> None:
    config = preference_config(make_config, tmp_path, {"name": "reward"})
    config["model"] = {"path": str(tiny_llama) if model == "tiny" else model}
    config["train"]["lr"] = 1e-2 if model == "tiny" else 1e-3
    summary = train(config, quiet=True).summary
    assert summary["eval_pair_accuracy_after"] == 1.0
    assert summary["eval_reward_margin_after"] > summary["eval_reward_margin_before"]
    assert summary["eval_loss_after"] < summary["eval_loss_before"]


BAD = [
    (
        {"prompt": "Hi", "chosen": "Same answer", "rejected": "Same answer"},
        "chosen and rejected are identical",
    ),
    ({"prompt": "  ", "chosen": "A", "rejected": "B"}, "field 'prompt' is empty"),
    ({"prompt": "Hi", "chosen": "", "rejected": "B"}, "field 'chosen' is missing or empty"),
]


@pytest.mark.parametrize(("row", "message"), BAD)
def test_bad_preference_records(
    row: dict[str, Any], message: str, make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = preference_config(make_config, tmp_path, {"name": "dpo"})
    config["data"]["train"] = str(write_jsonl(tmp_path / "bad.jsonl", [PAIRS[0], row]))
    with pytest.raises(UserError, match=f"bad.jsonl:2: {message}") as info:
        train(config, quiet=True)
    assert "\n" not in info.value.message


def test_kto_record_without_label(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    config = preference_config(make_config, tmp_path, {"name": "dpo", "loss": "kto"})
    rows = [
        {"prompt": "Hi", "completion": "Hello", "label": True},
        {"prompt": "Hi", "completion": "Hey", "label": None},
    ]
    config["data"]["train"] = str(write_jsonl(tmp_path / "kto.jsonl", rows))
    with pytest.raises(UserError, match=r"kto.jsonl:2: field 'label' must be true \(thumbs up\) or false"):
        train(config, quiet=True)


def test_choice_accuracy_is_the_models_own_choice_per_token() -> None:
    import torch

    from tunesmith.tasks.preference import choice_accuracy

    policy = torch.tensor([[-1.0, -2.0], [-3.0, -1.0], [-2.0, -2.0], [-4.0, -3.0]])
    lengths = torch.tensor([[1, 1], [1, 1], [2, 2], [4, 1]])
    # pair 1 chosen wins, 2 loses, 3 ties (half), 4 wins per token (-1 vs -3) though it loses in sum
    assert choice_accuracy(policy, lengths) == pytest.approx(2.5 / 4)


@pytest.mark.parametrize("method", [LORA, {"name": "full"}, {"name": "freeze", "trainable_layers": 1}])
def test_eval_command_measures_margins_against_the_base(
    method: dict[str, Any], make_config: Callable[..., dict[str, Any]], tmp_path: Path, tiny_llama: Path
) -> None:
    """`tunesmith eval` of a DPO run gives the margins training measured (reference: the base, with the
    adapter off or, for full / freeze, its weights loaded in), not the policy's log-probs against 0 or
    against itself; the base model alone has margin 0."""
    from tunesmith.cli import main

    result = train(preference_config(make_config, tmp_path, {"name": "dpo"}, method=method), quiet=True)
    out = tmp_path / "metrics.json"
    main(["eval", str(tiny_llama), str(result.run_dir), "--data", str(tmp_path / "held.jsonl"),
          "--json", str(out)])  # fmt: skip
    results = json.loads(out.read_text())["results"]
    tuned, base = results[result.run_dir.name], results[str(tiny_llama)]
    summary = result.summary
    assert tuned["pref_accuracy"] == summary["eval_pref_accuracy_after"] == 1.0
    assert tuned["reward_margin"] == pytest.approx(summary["eval_reward_margin_after"], rel=1e-4)
    assert tuned["eval_loss"] == pytest.approx(summary["eval_loss_after"], rel=1e-4)
    assert base["reward_margin"] == 0.0 and base["pref_accuracy"] == 0.0
    assert base["eval_loss"] == pytest.approx(0.6931, rel=1e-3)


def test_dpo_trains_without_evaluation(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    """eval.none leaves DPO no eval pairs: that is not 'no preference sample left' (it was, exit 2)."""
    config = preference_config(make_config, tmp_path, {"name": "dpo"})
    config["eval"] = {**config.get("eval", {}), "none": True}
    config["train"]["max_steps"] = 2
    result = train(config, quiet=True)
    assert result.summary["steps"] == 2 and result.summary["eval_loss_after"] is None
    assert result.summary["real_tokens"] > 0
