"""What a run leaves behind is read by plain peft and plain transformers."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tunesmith import train
from tunesmith.cli import main


def logits(model: Any, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


IDS = torch.tensor([[1, 9690, 198, 2683, 359, 253, 5356, 30, 2, 198]])


def test_lora_adapter_loads_with_plain_peft_and_merges(
    make_config: Callable[..., dict[str, Any]], tiny_llama: Path, tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result = train(make_config(train={"max_steps": 3}), quiet=True)
    final = result.final_dir
    assert (final / "adapter_config.json").is_file() and (final / "adapter_model.safetensors").is_file()
    assert (final / "tokenizer.json").is_file()
    base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    base_logits = logits(base, IDS)
    adapted = PeftModel.from_pretrained(base, final).eval()
    adapted_logits = logits(adapted, IDS)
    assert (adapted_logits - base_logits).abs().max() > 1e-3  # training changed the model

    out = tmp_path / "merged"
    main(["export", str(result.run_dir), "--merge", "--out", str(out)])
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(logits(merged, IDS), adapted_logits, atol=1e-4, rtol=0)
    assert (out / "tokenizer.json").is_file()


def test_full_fine_tune_saves_standard_folder(
    make_config: Callable[..., dict[str, Any]], tiny_llama: Path
) -> None:
    from transformers import AutoModelForCausalLM

    result = train(make_config(method={"name": "full"}, train={"max_steps": 2, "lr": 1e-3}), quiet=True)
    assert result.summary["trainable_params"] == result.summary["total_params"]
    tuned = AutoModelForCausalLM.from_pretrained(result.final_dir, dtype=torch.float32)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    assert (logits(tuned, IDS) - logits(base, IDS)).abs().max() > 1e-4


def test_summary_and_metrics_contract(make_config: Callable[..., dict[str, Any]]) -> None:
    result = train(
        make_config(train={"max_steps": 4, "save_every_steps": 2}, eval={"every_steps": 2, "num_samples": 1}),
        quiet=True,
    )
    summary = result.summary
    for key in (
        "eval_loss_before",
        "eval_loss_after",
        "trainable_params",
        "total_params",
        "real_tokens_per_s",
        "peak_memory_mb",
        "steps",
        "wall_s",
    ):
        assert summary[key] is not None, key
    assert summary["eval_loss_after"] < summary["eval_loss_before"]
    assert summary["steps"] == 4 and 0 < summary["trainable_params"] < summary["total_params"]
    assert [m["step"] for m in result.metrics if "loss" in m] == [1, 2, 3, 4]
    assert [m["step"] for m in result.metrics if "eval_loss" in m] == [0, 2, 4]
    assert all(
        {"lr", "grad_norm", "real_tokens_per_s", "padded_tokens_per_s", "peak_memory_mb", "peak_rss_mb"}
        <= m.keys()
        for m in result.metrics
        if "loss" in m
    )
    assert sorted(p.name for p in (result.run_dir / "checkpoints").iterdir()) == ["step-2", "step-4"]
    assert (result.run_dir / "config.yaml").read_text().startswith("model:")
    assert summary["samples"][0]["prompt"] == "Say hi" and isinstance(summary["samples"][0]["after"], str)


def test_gpt2_base_model_with_chatml_fallback(
    make_config: Callable[..., dict[str, Any]], tiny_gpt2: Path
) -> None:
    result = train(make_config(model={"path": str(tiny_gpt2)}, train={"max_steps": 4}), quiet=True)
    assert result.summary["eval_loss_after"] < result.summary["eval_loss_before"]
    saved = (result.final_dir / "chat_template.jinja").read_text()
    assert "<|im_start|>" in saved  # the fallback template travels with the tuned model
