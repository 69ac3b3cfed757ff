"""Shared fixtures: the real SmolLM2 tokenizer (from the packaged GGUF, dequantized once and cached)
and tiny random models built from a config, saved as ordinary model folders."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tunesmith import train
from tunesmith.config import ModelConfig
from tunesmith.models.load import resolve_model


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def smol_folder() -> Path:
    return resolve_model(ModelConfig(path="smollm2-135m-instruct")).folder


@pytest.fixture(scope="session")
def tokenizer(smol_folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_folder)


def _save_tiny(folder: Path, model: Any, tokenizer: Any) -> Path:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return _save_tiny(tmp_path_factory.mktemp("tiny-llama"), LlamaForCausalLM(config), tokenizer)


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """GPT-2 architecture with a tokenizer that has no chat template (a base model)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    folder = _save_tiny(tmp_path_factory.mktemp("tiny-gpt2"), GPT2LMHeadModel(config), tokenizer)
    config_path = folder / "tokenizer_config.json"
    data = json.loads(config_path.read_text())
    data.pop("chat_template", None)
    config_path.write_text(json.dumps(data))
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    return folder


CHATS = [
    {"instruction": "Say hi", "output": "Hello there!"},
    {"instruction": "Name a fruit", "output": "Apple."},
    {"instruction": "Name a colour", "output": "Blue, like the sea."},
    {"instruction": "Count to three", "output": "One, two, three."},
    {
        "messages": [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "and 3+3?"},
            {"role": "assistant", "content": "6"},
        ]
    },
]


@pytest.fixture
def make_config(tmp_path: Path, tiny_llama: Path) -> Callable[..., dict[str, Any]]:
    """A small, fast run config over the tiny Llama; keyword sections are merged in."""

    def build(**sections: dict[str, Any]) -> dict[str, Any]:
        train = write_jsonl(tmp_path / "train.jsonl", [CHATS[i % 4] for i in range(16)])
        held = write_jsonl(tmp_path / "eval.jsonl", CHATS[:2])
        config: dict[str, Any] = {
            "model": {"path": str(tiny_llama)},
            # the tiny sets reuse training chats as eval data on purpose: leakage is reported, not fatal
            "data": {"train": str(train), "eval": str(held), "max_length": 128, "checks": "warn"},
            "method": {"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
            "train": {"max_steps": 4, "batch_size": 2, "lr": 1e-2, "mixed_precision": "no"},
            "eval": {"num_samples": 0},
            "output": {"dir": str(tmp_path / "runs"), "name": "t"},
        }
        for key, value in sections.items():
            replaces = key == "method" and "name" in value  # another method: its own keys only
            config[key] = (
                {**config.get(key, {}), **value} if isinstance(value, dict) and not replaces else value
            )
        return config

    return build


# Two LoRA runs on the tiny Llama that answer every prompt in their own way ("yes" and "no"), so a test
# can tell which adapter answered (chat, generate, serve, export).
PROMPTS = [
    "Say something.", "What is the weather?", "Tell me a story.", "How are you?", "Name a city.",
    "What time is it?", "Pick a number.", "Describe the sea.",
]
ANSWERS = {"yes": "Yes, certainly.", "no": "No, never."}


def train_tiny_run(root: Path, tiny_llama: Path, name: str, answer: str, steps: int = 40) -> Path:
    data = write_jsonl(root / f"{name}.jsonl", [{"prompt": p, "completion": answer} for p in PROMPTS])
    config = {
        "model": {"path": str(tiny_llama)},
        "data": {"train": str(data), "eval": str(data), "max_length": 64, "checks": "off"},
        "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
        "train": {"max_steps": steps, "batch_size": 4, "lr": 3e-2, "mixed_precision": "no", "warmup_steps": 0},
        "eval": {"num_samples": 0, "memorization": {"samples": 0}, "forgetting": False},
        "output": {"dir": str(root / "runs"), "name": name},
    }
    return train(config, quiet=True).run_dir


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-runs")
    return {name: train_tiny_run(root, tiny_llama, name, answer) for name, answer in ANSWERS.items()}
