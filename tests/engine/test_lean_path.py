"""The faster, leaner training path computes what the plain path computes: the chunked loss from hidden
states (values and gradients), the bool-mask adapter dropout (its distribution and its gradient), the
frozen base in bf16 (within bf16's own tolerance), selective and automatic gradient checkpointing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from tunesmith import train
from tunesmith.objectives.causal_lm import causal_lm_loss_sum, linear_cross_entropy_sum


def _both(hidden: torch.Tensor, head: torch.nn.Linear, targets: torch.Tensor, smoothing: float,
          autocast: bool) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
    params = [hidden, head.weight] + ([head.bias] if head.bias is not None else [])
    results = []
    for fused in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            if fused:
                loss = linear_cross_entropy_sum(hidden, head, targets, smoothing, chunk=7)
            else:
                loss = causal_lm_loss_sum(head(hidden), targets, smoothing)
        results.append((loss.detach(), list(torch.autograd.grad(loss * 0.3, params))))
    return results


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_chunked_loss_equals_the_full_logits_loss_in_fp32(bias: bool, smoothing: float) -> None:
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=bias)
    hidden = torch.randn(37, 16, requires_grad=True)  # 37: chunks of 7 leave a short last one
    targets = torch.randint(0, 50, (37,))
    (plain, plain_grads), (fused, fused_grads) = _both(hidden, head, targets, smoothing, autocast=False)
    assert fused.dtype == torch.float32
    assert fused.item() == pytest.approx(plain.item(), rel=1e-6)
    for got, want in zip(fused_grads, plain_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_chunked_loss_under_bf16_autocast_stays_within_bf16_tolerance() -> None:
    torch.manual_seed(1)
    head = torch.nn.Linear(32, 80, bias=False)
    hidden = torch.randn(41, 32, requires_grad=True)
    targets = torch.randint(0, 80, (41,))
    (plain, plain_grads), (fused, fused_grads) = _both(hidden, head, targets, 0.0, autocast=True)
    assert fused.item() == pytest.approx(plain.item(), rel=1e-3)
    torch.testing.assert_close(fused_grads[0], plain_grads[0], rtol=2e-2, atol=2e-3)  # hidden: same bf16 matmul
    # the weight's gradient is summed over chunks in fp32 here, in one bf16 matmul by autograd
    torch.testing.assert_close(fused_grads[1], plain_grads[1], rtol=3e-2, atol=2e-2)


def test_chunked_loss_without_grad_keeps_nothing() -> None:
    head = torch.nn.Linear(8, 20)
    hidden = torch.randn(5, 8)
    with torch.no_grad():
        loss = linear_cross_entropy_sum(hidden, head, torch.arange(5))
    assert loss.grad_fn is None
    assert loss.item() == pytest.approx(F.cross_entropy(head(hidden), torch.arange(5), reduction="sum").item(), rel=1e-6)


def test_the_model_loss_takes_the_chunked_path_and_matches_the_logits_path(tiny_llama: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tunesmith.objectives import logprobs

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights="gaussian"))
    lm = logprobs.TrainedTokenLM(model)
    ids = torch.randint(3, 200, (2, 12))
    labels = ids.clone()
    labels[:, :5] = -100
    calls = []
    real = logprobs.linear_cross_entropy_sum
    logprobs.linear_cross_entropy_sum = lambda *a, **k: calls.append(1) or real(*a, **k)  # type: ignore[assignment]
    try:
        fused = lm(ids, labels)
    finally:
        logprobs.linear_cross_entropy_sum = real  # type: ignore[assignment]
    logits, targets, _ = lm.trained_logits(ids, labels)
    plain = causal_lm_loss_sum(logits, targets)
    assert calls, "the direct path must use the chunked loss"
    trainable = [p for p in model.parameters() if p.requires_grad]
    got = torch.autograd.grad(fused, trainable)
    want = torch.autograd.grad(plain, trainable)
    assert fused.item() == pytest.approx(plain.item(), rel=1e-6)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)


def test_bool_mask_dropout_is_dropout() -> None:
    from tunesmith.methods.dropout import BoolMaskDropout

    dropout = BoolMaskDropout(0.05)
    x = torch.randn(1000, 1000, requires_grad=True)
    torch.manual_seed(0)
    y = dropout(x)
    kept = y != 0
    keep_prob = 1 - round(0.05 * 2**15) / 2**15
    assert kept.float().mean().item() == pytest.approx(keep_prob, abs=1e-3)  # 1M draws: σ ≈ 2e-4
    assert kept.view(-1)[3::4].float().mean().item() == pytest.approx(keep_prob, abs=2e-3)  # every int16 lane
    torch.testing.assert_close(y[kept], x[kept] / keep_prob)
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, kept.float() / keep_prob)
    torch.manual_seed(0)
    assert torch.equal(BoolMaskDropout(0.05)(x) != 0, kept)  # the seed decides the mask
    dropout.eval()
    assert dropout(x) is x


def test_peft_adapters_get_the_lean_dropout_and_save_the_same_keys(tiny_llama: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tunesmith.config import load_config
    from tunesmith.methods import METHODS
    from tunesmith.methods.dropout import BoolMaskDropout

    cfg = load_config({"model": {"path": str(tiny_llama)}, "data": {"train": "x.jsonl"},
                       "method": {"name": "lora", "r": 4, "dropout": 0.1}})
    model = METHODS.get("lora").apply(AutoModelForCausalLM.from_pretrained(tiny_llama), cfg.method)
    dropouts = [m for m in model.modules() if isinstance(m, BoolMaskDropout)]
    assert len(dropouts) == 2 * 7 and all(d.p == 0.1 for d in dropouts)  # 2 blocks × 7 linear layers
    model.save_pretrained(tmp_path / "a")
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), tmp_path / "a")
    assert set(reloaded.state_dict()) == set(model.state_dict())


def _losses(result: Any) -> list[float]:
    return [m["loss"] for m in result.metrics if "loss" in m]


def test_frozen_base_in_bf16_trains_like_the_fp32_base(make_config: Callable[..., dict[str, Any]]) -> None:
    config = make_config(train={"max_steps": 4, "lr": 1e-2, "mixed_precision": "bf16"})
    fp32 = train(config, ["output.name=fp32", "train.base_dtype=float32"], quiet=True)
    bf16 = train(config, ["output.name=bf16", "train.base_dtype=bfloat16"], quiet=True)
    assert _losses(bf16) == pytest.approx(_losses(fp32), rel=2e-2)  # bf16's own tolerance (8-bit mantissa)
    model = _prepared(config, ["train.base_dtype=auto"])
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    trained = {p.dtype for p in model.parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16} and trained == {torch.float32}
    config["train"]["mixed_precision"] = "no"  # no bf16 autocast: nothing is cast
    assert {p.dtype for p in _prepared(config, []).parameters()} == {torch.float32}
    from safetensors.torch import load_file

    saved = load_file(bf16.run_dir / "final" / "adapter_model.safetensors")
    assert {t.dtype for t in saved.values()} == {torch.float32}


def _prepared(config: dict[str, Any], overrides: list[str]) -> Any:
    """The run's model as training gets it (method, precision, checkpointing)."""
    from transformers import AutoModelForCausalLM

    from tunesmith.config import load_config
    from tunesmith.methods import METHODS
    from tunesmith.training import apply_run_settings

    cfg = load_config(config, overrides)
    base = AutoModelForCausalLM.from_pretrained(cfg.model.path, dtype=torch.float32)
    return apply_run_settings(base, cfg, METHODS.get(cfg.method.name))


def test_full_fine_tuning_keeps_its_weights_in_fp32(make_config: Callable[..., dict[str, Any]]) -> None:
    model = _prepared(make_config(method={"name": "full"}, train={"mixed_precision": "bf16"}), [])
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_checkpointing_some_blocks_gives_the_same_losses(make_config: Callable[..., dict[str, Any]]) -> None:
    from transformers.modeling_layers import GradientCheckpointingLayer

    config = make_config(method={"name": "full"}, train={"max_steps": 3, "lr": 1e-3})
    plain = train(config, ["output.name=plain", "train.gradient_checkpointing=false"], quiet=True)
    some = train(config, ["output.name=some", "train.gradient_checkpointing=true", "train.checkpoint_layers=1"], quiet=True)
    assert _losses(some) == pytest.approx(_losses(plain), abs=1e-5)
    model = _prepared(config, ["train.gradient_checkpointing=true", "train.checkpoint_layers=1"])
    flags = [m.gradient_checkpointing for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    assert sorted(flags) == [False, True]


def test_auto_checkpointing_meets_a_memory_budget(make_config: Callable[..., dict[str, Any]]) -> None:
    from tunesmith.estimate.estimator import estimate_config

    config = make_config(train={"max_steps": 1, "batch_size": 4})
    free = estimate_config(config)
    assert free.checkpointed_blocks == 0
    every = estimate_config(config, ["train.gradient_checkpointing=true"])
    budget_gb = (free.peak_memory_mb + every.peak_memory_mb) / 2 / 1024  # between: some blocks must go
    chosen = estimate_config(config, [f"train.memory_budget_gb={budget_gb}"])
    assert 0 < chosen.checkpointed_blocks <= 2 and chosen.peak_memory_mb <= budget_gb * 1024
    result = train(config, [f"train.memory_budget_gb={budget_gb}"], quiet=True)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["estimate"]["checkpointed_blocks"] == chosen.checkpointed_blocks


def test_a_budget_nothing_fits_is_one_line(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(make_config()))
    proc = subprocess.run([sys.executable, "-m", "tunesmith", "train", str(path), "train.memory_budget_gb=0.01"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "train.memory_budget_gb 0.01: no setting fits" in lines[0]
    assert "GB" in lines[0]
    assert not (tmp_path / "runs" / "t").exists()


def test_a_failing_compile_falls_back_with_one_warning(
    make_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(train={"max_steps": 3})
    eager = train(config, ["output.name=eager"], quiet=True)

    def broken(fn: Any, **_: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("backend exploded\nsecond line")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    fallback = train(config, ["output.name=fallback", "train.compile=true"], quiet=True)
    assert _losses(fallback) == _losses(eager)
    warnings = [line for line in (fallback.run_dir / "train.log").read_text().splitlines() if "train.compile" in line]
    assert len(warnings) == 1 and "backend exploded" in warnings[0] and "second line" not in warnings[0]


@pytest.mark.slow
def test_compiled_training_matches_eager(make_config: Callable[..., dict[str, Any]]) -> None:
    config = make_config(train={"max_steps": 3})
    eager = train(config, ["output.name=eager"], quiet=True)
    compiled = train(config, ["output.name=compiled", "train.compile=true"], quiet=True)
    log = (compiled.run_dir / "train.log").read_text()
    assert "torch.compile failed" not in log
    assert _losses(compiled) == pytest.approx(_losses(eager), rel=1e-4)
