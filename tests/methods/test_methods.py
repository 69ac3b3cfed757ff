"""Every method × model family: trains (loss falls), saves only what it trained, reloads to identical
logits, loads with plain peft where peft-backed, and merges to the same outputs where mergeable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from tunesmith.config import method_section
from tunesmith.methods import METHODS, count_parameters
from tunesmith.sections import MethodSection

VOCAB = 96


def _llama() -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
        )
    )


def _gpt2() -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=128))


def _bert() -> Any:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=128,
        num_labels=3,
    )
    return BertForSequenceClassification(config)


FAMILIES = {"llama": _llama, "gpt2": _gpt2, "bert": _bert}

# method settings small enough for the tiny models
SETTINGS: dict[str, dict[str, Any]] = {
    "full": {},
    "freeze": {"trainable_layers": 1, "trainable_modules": ["norm"]},
    "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
    "dora": {"r": 4, "alpha": 8, "dropout": 0.0},
    "lora-modules": {"r": 4, "alpha": 8, "dropout": 0.0, "modules_to_save": ["lm_head"]},
    "adapter-houlsby": {"placement": "houlsby", "reduction_factor": 4},
    "adapter-pfeiffer": {"placement": "pfeiffer", "reduction_factor": 4, "activation": "gelu"},
    "prefix": {"num_virtual_tokens": 4},
    "prefix-projection": {"num_virtual_tokens": 4, "prefix_projection": True, "projection_hidden_size": 16},
    "prompt": {"num_virtual_tokens": 4},
    "ia3": {},
    "vera": {"r": 8, "d_initial": 0.1},
}
# methods with a handful of parameters move them further per step (as their papers' learning rates do)
FEW_PARAMS = {"prefix", "prompt", "ia3", "vera"}
PEFT_BACKED = {"lora", "dora", "prefix", "prompt", "ia3", "vera"}


def method_config(case: str) -> MethodSection:
    return method_section({"name": case.split("-")[0], **SETTINGS[case]})


@pytest.fixture(scope="module")
def base_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folders = {}
    for family, build in FAMILIES.items():
        torch.manual_seed(0)
        folder = tmp_path_factory.mktemp(f"base-{family}")
        build().save_pretrained(folder)
        folders[family] = folder
    return folders


def load_base(family: str, folder: Path) -> Any:
    return type(FAMILIES[family]()).from_pretrained(folder).eval()


def make_batch(family: str) -> dict[str, torch.Tensor]:
    # a learnable pattern (each row counts up by its own step) rather than noise
    input_ids = torch.stack([(torch.arange(12) * step + 3) % VOCAB for step in (1, 5)])
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 9:] = 0
    labels = torch.tensor([0, 2]) if family == "bert" else input_ids.masked_fill(attention_mask == 0, -100)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def logits_of(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return out.logits  # type: ignore[no-any-return]


def train_steps(model: Any, batch: dict[str, torch.Tensor], steps: int = 20, lr: float = 3e-2) -> list[float]:
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    return losses


def saved_numel(folder: Path, frozen: tuple[str, ...] = ()) -> int:
    """Numbers saved, leaving out the frozen tensors a method must keep (names containing `frozen`)."""
    files = list(folder.glob("*.safetensors"))
    return sum(
        t.numel() for f in files for k, t in load_file(str(f)).items() if not any(part in k for part in frozen)
    )


# VeRA's adapter also holds the shared random projections it was trained against (frozen)
SAVED_FROZEN = {"vera": ("vera_A", "vera_B")}


# prefix tuning needs a key/value cache, which encoders lack (see test_prefix_needs_a_cache),
# and the BERT classifier has no lm_head (peft adds its classifier to modules_to_save by itself)
UNFIT = {("prefix", "bert"), ("prefix-projection", "bert"), ("lora-modules", "bert")}
TABLE = [(c, f) for c in SETTINGS for f in FAMILIES if (c, f) not in UNFIT]


@pytest.mark.parametrize(("case", "family"), TABLE)
def test_method_trains_saves_reloads(
    case: str, family: str, base_folders: dict[str, Path], tmp_path: Path
) -> None:
    cfg = method_config(case)
    method = METHODS.get(cfg.name)
    torch.manual_seed(0)
    model = method.apply(load_base(family, base_folders[family]), cfg)
    trainable, total = count_parameters(model)
    assert 0 < trainable <= total
    if cfg.name != "full":
        assert trainable < total / 2

    batch = make_batch(family)
    losses = train_steps(model, batch, lr=0.2 if cfg.name in FEW_PARAMS else 3e-2)
    assert losses[-1] < losses[0] * 0.995, losses
    trained_logits = logits_of(model, batch)

    method.save(model, tmp_path / "trained")
    if cfg.name != "full":  # only what was trained is written
        assert saved_numel(tmp_path / "trained", SAVED_FROZEN.get(cfg.name, ())) <= trainable

    reloaded = method.load_trained(load_base(family, base_folders[family]), tmp_path / "trained")
    torch.testing.assert_close(logits_of(reloaded, batch), trained_logits, atol=1e-6, rtol=0)

    if cfg.name in PEFT_BACKED:  # the folder is a plain peft adapter
        from peft import PeftModel

        plain = PeftModel.from_pretrained(load_base(family, base_folders[family]), tmp_path / "trained")
        torch.testing.assert_close(logits_of(plain, batch), trained_logits, atol=1e-6, rtol=0)

    if method.mergeable:
        merged = method.merge(reloaded)
        assert not any(part in n for n, _ in merged.named_parameters() for part in ("lora", "ia3", "vera"))
        torch.testing.assert_close(logits_of(merged, batch), trained_logits, atol=1e-4, rtol=1e-4)
    else:
        with pytest.raises(NotImplementedError):
            method.merge(reloaded)


@pytest.mark.parametrize("init", ["gaussian", "pissa", "olora"])
def test_lora_inits_save_as_plain_lora(init: str, base_folders: dict[str, Path], tmp_path: Path) -> None:
    """PiSSA/OLoRA move the base weights at init; the saved adapter must still fit the untouched base."""
    from peft import PeftModel

    cfg = method_section({"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0, "init": init, "use_rslora": True})
    method = METHODS.get("lora")
    model = method.apply(load_base("llama", base_folders["llama"]), cfg)
    batch = make_batch("llama")
    train_steps(model, batch, steps=3)
    trained_logits = logits_of(model, batch)
    method.save(model, tmp_path / "trained")
    plain = PeftModel.from_pretrained(load_base("llama", base_folders["llama"]), tmp_path / "trained")
    torch.testing.assert_close(logits_of(plain, batch), trained_logits, atol=1e-5, rtol=1e-5)


def test_prefix_needs_a_cache(base_folders: dict[str, Path]) -> None:
    from tunesmith.errors import UserError

    with pytest.raises(UserError, match="method.name: prefix .* BertForSequenceClassification does not take"):
        METHODS.get("prefix").apply(load_base("bert", base_folders["bert"]), method_config("prefix"))


def test_loraplus_gives_b_matrices_the_ratio_as_peft_does(tiny_llama: Path) -> None:
    """LoRA+ parameter groups against peft's own create_loraplus_optimizer on the same model."""
    from peft.optimizers import create_loraplus_optimizer
    from transformers import AutoModelForCausalLM

    from tunesmith.config import TrainConfig
    from tunesmith.engine.optim import build_optimizer
    from tunesmith.methods import METHODS

    method = METHODS.get("lora")
    cfg = method_section({"name": "lora", "r": 4, "alpha": 8, "loraplus_lr_ratio": 16.0})
    model = method.apply(AutoModelForCausalLM.from_pretrained(tiny_llama), cfg)
    ours = build_optimizer(model, TrainConfig(lr=1e-3), lr_scale=method.lr_scale(cfg))
    theirs = create_loraplus_optimizer(model, torch.optim.AdamW, lr=1e-3, loraplus_lr_ratio=16.0)

    def lr_of(optimizer: torch.optim.Optimizer) -> dict[int, float]:
        return {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}

    assert lr_of(ours) == lr_of(theirs)
    assert sorted(set(lr_of(ours).values())) == [1e-3, 16e-3]
