from pathlib import Path

import pytest

from tunesmith.config import ModelConfig
from tunesmith.errors import UserError
from tunesmith.models.load import load_causal_lm, resolve_model


def test_alias_resolves_to_dequantized_gguf(smol_folder: Path) -> None:
    assert smol_folder == resolve_model(ModelConfig(path="smollm2-135m-instruct")).folder  # cached
    assert (smol_folder / "model.safetensors").is_file() and (smol_folder / "tokenizer.json").is_file()
    assert "quantization_config" not in (smol_folder / "config.json").read_text()


def test_gguf_model_is_saveable(smol_folder: Path, tmp_path: Path) -> None:
    model = load_causal_lm(resolve_model(ModelConfig(path=str(smol_folder))), ModelConfig())
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 30
    model.save_pretrained(tmp_path / "copy")
    assert (tmp_path / "copy" / "model.safetensors").stat().st_size > 100_000_000


def test_bad_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fake.gguf").write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(UserError, match="not a GGUF file"):
        resolve_model(ModelConfig(path=str(tmp_path / "fake.gguf")))
    with pytest.raises(UserError, match="does not exist"):
        resolve_model(ModelConfig(path="./no/such/model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no config.json"):
        resolve_model(ModelConfig(path=str(tmp_path / "empty")))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(UserError, match="not in the local Hugging Face cache; tunesmith never downloads"):
        resolve_model(ModelConfig(path="some-org/some-model"))


def test_hub_id_from_local_cache(tmp_path: Path, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub id already in the cache resolves offline (a snapshot laid out as huggingface_hub does)."""
    import shutil

    hub = tmp_path / "hub"
    repo = hub / "models--acme--tiny"
    snapshot = repo / "snapshots" / "0123abc"
    shutil.copytree(tiny_llama, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    assert resolve_model(ModelConfig(path="acme/tiny")).folder == snapshot
