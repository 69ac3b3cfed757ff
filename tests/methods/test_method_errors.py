"""Bad method settings: one line naming the key, before a run folder is created."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tunesmith import train
from tunesmith.errors import UserError

CASES = [
    (
        {"name": "lora", "r": 4, "target_modules": ["q_proj", "qkv"]},
        r"method.target_modules: qkv match no module of LlamaForCausalLM; candidates: down_proj, gate_proj, "
        r"k_proj, lm_head, o_proj, q_proj, up_proj, v_proj",
    ),
    (
        {"name": "lora", "r": 20},
        r"method.r: 20 is larger than model.layers.0.self_attn.k_proj allows \(32 → 16",
    ),
    (
        {"name": "adapter", "reduction_factor": 64},
        r"method.reduction_factor: 64 leaves no bottleneck for hidden size 32",
    ),
    ({"name": "adapter", "reduction_factor": 1}, r"method.reduction_factor: Input should be greater than 1"),
    (
        {"name": "prefix", "num_virtual_tokens": 1000},
        r"method.num_virtual_tokens: 1000 virtual tokens \+ data.max_length 128 exceed the model's context of 1024",
    ),
    (
        {"name": "adapter", "r": 4},
        r"config section method: r not used by method adapter \(its keys: activation, placement, reduction_factor\)",
    ),
    ({"name": "freeze", "trainable_layers": 5}, r"method.trainable_layers: 5 but the model has 2 blocks"),
    ({"name": "freeze"}, r"method freeze needs trainable_layers and/or trainable_modules"),
    (
        {"name": "freeze", "trainable_modules": ["pooler"]},
        r"method.trainable_modules: 'pooler' matches no parameter; name parts: down_proj, embed_tokens, .*self_attn",
    ),
    (
        {"name": "ia3", "target_modules": ["k_proj"], "feedforward_modules": ["down_proj"]},
        r"method.feedforward_modules: down_proj not among method.target_modules",
    ),
    ({"name": "lorra"}, r"unknown method 'lorra'; known: full, freeze, lora, dora, qlora"),
]


@pytest.mark.parametrize(("method", "message"), CASES)
def test_bad_method_settings(
    method: dict[str, Any], message: str, make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    with pytest.raises(UserError, match=message) as info:
        train(make_config(method=method), quiet=True)
    assert "\n" not in info.value.message
    assert not (tmp_path / "runs" / "t").exists()


def test_packing_with_virtual_tokens(make_config: Callable[..., dict[str, Any]]) -> None:
    config = make_config(method={"name": "prompt"}, data={"packing": True})
    with pytest.raises(UserError, match="data.packing: true does not work with method.name=prompt"):
        train(config, quiet=True)


@pytest.mark.skipif(sys.platform == "win32", reason="posix paths")
def test_qlora_without_cuda_stops_before_loading(tmp_path: Path) -> None:
    """The model path does not even exist: the CUDA check comes before any loading."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the GPU check script covers qlora there")
    config = {
        "model": {"path": str(tmp_path / "no-such-model")},
        "data": {"train": str(tmp_path / "no-such-data.jsonl")},
        "method": {"name": "qlora", "r": 8},
    }
    path = tmp_path / "qlora.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, "-m", "tunesmith", "train", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: method.name: qlora needs a CUDA GPU (bitsandbytes 4-bit kernels) and none is visible; "
        "use method.name: lora on this machine"
    ]
