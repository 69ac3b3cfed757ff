"""Every method through `tunesmith.train()` on the tiny Llama: the same run folder and summary fields,
lower eval loss, only trained files saved, export merged where the maths allows, and several results
switched on one base."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tunesmith import train
from tunesmith.errors import UserError
from tunesmith.export.merge import export_model
from tunesmith.runs.tuned import TunedModels

METHOD_SECTIONS: dict[str, dict[str, Any]] = {
    "full": {"name": "full"},
    "freeze": {"name": "freeze", "trainable_layers": 1, "trainable_modules": ["norm"]},
    "lora": {"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0, "use_rslora": True},
    "dora": {"name": "dora", "r": 4, "alpha": 8, "dropout": 0.0},
    "adapter": {"name": "adapter", "placement": "houlsby", "reduction_factor": 4},
    "prefix": {"name": "prefix", "num_virtual_tokens": 4},
    "prompt": {"name": "prompt", "num_virtual_tokens": 4},
    "ia3": {"name": "ia3"},
    "vera": {"name": "vera", "r": 8},
}
FEW_PARAMS = {"prefix", "prompt", "ia3", "vera"}
SAVED_FILE = {
    "full": "model.safetensors",
    "freeze": "method_weights.safetensors",
    "adapter": "method_weights.safetensors",
}
MERGEABLE = {"full", "freeze", "lora", "dora", "ia3", "vera"}


def run_method(make_config: Callable[..., dict[str, Any]], method: str, **extra: Any) -> Any:
    lr = 0.1 if method in FEW_PARAMS else 1e-2
    config = make_config(
        method=METHOD_SECTIONS[method],
        train={"max_steps": 6, "lr": lr},
        output={"name": method},
        **extra,
    )
    return train(config, quiet=True)


@pytest.mark.parametrize("method", list(METHOD_SECTIONS))
def test_every_method_trains_and_exports(
    method: str, make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    result = run_method(make_config, method, eval={"num_samples": 1, "max_new_tokens": 4})
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["method"] == method
    assert 0 < summary["trainable_params"] <= summary["total_params"]
    assert summary["trainable_state_mb"] > 0
    assert summary["eval_loss_after"] < summary["eval_loss_before"]
    assert len(summary["samples"]) == 1
    saved = SAVED_FILE.get(method, "adapter_model.safetensors")
    assert (result.final_dir / saved).is_file()
    assert (result.final_dir / ("config.json" if method == "full" else "model.safetensors")).exists() == (
        method == "full"
    )
    assert "packing: false" in (result.run_dir / "config.yaml").read_text() or method not in {
        "prefix",
        "prompt",
    }

    exported = export_model(result.run_dir, tmp_path / "export", merge=True)
    assert exported.merged == (method in MERGEABLE)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(exported.path)
    assert (exported.path / "method").is_dir() == (method not in MERGEABLE)
    if method in MERGEABLE:  # the merged model alone reproduces the tuned model
        tuned = TunedModels({"a": result.run_dir})
        ids = torch.tensor([[1, 20, 300, 4000, 5]])
        with torch.no_grad():
            torch.testing.assert_close(model(ids).logits, tuned.model(ids).logits, atol=1e-4, rtol=1e-4)
    else:
        assert "cannot be merged" in exported.note


@pytest.mark.parametrize("method", ["lora", "adapter", "freeze", "prompt"])
def test_several_results_switch_on_one_base(
    method: str, make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    first = run_method(make_config, method)
    second = train(
        make_config(
            method=METHOD_SECTIONS[method],
            train={"max_steps": 3, "lr": 0.05, "seed": 7},
            output={"name": f"{method}-2"},
        ),
        quiet=True,
    )
    ids = torch.tensor([[1, 20, 300, 4000, 5, 6]])
    # reference: each result loaded alone on a fresh base
    alone = {}
    for name, run in (("a", first), ("b", second)):
        with torch.no_grad():
            alone[name] = TunedModels({name: run.run_dir}).model(ids).logits[:, -ids.shape[1] :]
    bank = TunedModels({"a": first.run_dir, "b": second.run_dir})
    base_params = {id(p) for p in bank.model.parameters()}
    outputs = {}
    for name in ["b", "a", None, "b"]:
        with torch.no_grad():
            outputs[name] = bank.use(name)(ids).logits[:, -ids.shape[1] :]  # prompt tuning adds positions
        if name is not None:
            torch.testing.assert_close(outputs[name], alone[name], atol=1e-5, rtol=1e-5)
    assert {id(p) for p in bank.model.parameters()} == base_params  # switched in place, nothing reloaded
    assert not torch.allclose(outputs["a"], outputs["b"])
    assert not torch.allclose(outputs[None], outputs["a"])
    with pytest.raises(UserError, match="no run named 'c' in this set; loaded: a, b"):
        bank.use("c")


def test_sets_refuse_mixed_methods(make_config: Callable[..., dict[str, Any]]) -> None:
    lora = run_method(make_config, "lora")
    ia3 = run_method(make_config, "ia3")
    with pytest.raises(UserError, match="uses method ia3, not lora: one method per set"):
        TunedModels({"x": lora.run_dir, "y": ia3.run_dir})


def test_loraplus_trains_through_the_same_loop(make_config: Callable[..., dict[str, Any]]) -> None:
    plain = train(make_config(train={"max_steps": 4}, output={"name": "plain"}), quiet=True)
    plus = train(make_config(method={"loraplus_lr_ratio": 16.0}, train={"max_steps": 4}, output={"name": "plus"}),
                 quiet=True)
    assert plus.summary["eval_loss_after"] != plain.summary["eval_loss_after"]
    assert plus.summary["eval_loss_after"] < plus.summary["eval_loss_before"]
    with pytest.raises(UserError, match="loraplus_lr_ratio"):
        train(make_config(method={"name": "ia3", "loraplus_lr_ratio": 16.0}), quiet=True)
