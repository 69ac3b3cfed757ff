"""A GGUF file (llama.cpp, Ollama) from a merged LLaMA-family model, written with the `gguf` package.

Why by hand: llama.cpp's own converter is a script in its repository, not an installable library; the
`gguf` package gives the writer, the tensor-name map, the vocab readers and the quantizers, and this
module wires them for the architectures whose layout it knows. What it writes: the hyper-parameters,
every weight (q/k projections permuted from Hugging Face's rotate-half layout to GGML's interleaved
rotary layout, as llama.cpp expects), the BPE vocab with its merges and pre-tokenizer, special token ids,
the run's chat template and its end-of-turn token. Whether the file really equals the model is not
assumed: `export.verify` loads it back in llama.cpp and transformers and measures.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunesmith.data.templates import ChatRenderer
from tunesmith.errors import UserError

ARCHITECTURES = {"llama": "LLAMA", "mistral": "LLAMA"}  # HF model_type → gguf MODEL_ARCH
QUANTS = ("f16", "bf16", "q8_0")
LOSSLESS = ("f16", "bf16")  # what the trained weights survive (fp16 / bf16 training precision)
LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"


def check_architecture(model_config: Any) -> None:
    model_type = getattr(model_config, "model_type", "?")
    if model_type not in ARCHITECTURES:
        raise UserError(
            f"export --format gguf: architecture {model_type!r} is not supported by tunesmith's GGUF writer "
            f"(supported: {', '.join(ARCHITECTURES)}); --format hf and --format adapter work for every model"
        )
    scaling = getattr(model_config, "rope_scaling", None) or {}
    kind = scaling.get("rope_type", scaling.get("type", "default")) if isinstance(scaling, dict) else "default"
    if kind not in ("default", None):
        raise UserError(f"export --format gguf: rope scaling {kind!r} is not supported yet; use --format hf")


def detect_pre_tokenizer(tokenizer_json: dict[str, Any]) -> str:
    """llama.cpp's name for the tokenizer's pre-tokenizer (how text is split before BPE)."""
    model = tokenizer_json.get("model", {})
    if model.get("type") != "BPE":
        raise UserError(
            f"export --format gguf: tokenizer model {model.get('type')!r} is not supported (only byte-level BPE); "
            "use --format hf"
        )
    pre = tokenizer_json.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt-2"
    parts = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else []
    kinds = [p.get("type") for p in parts]
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits"):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and LLAMA3_SPLIT in json.dumps(parts[0].get("pattern", {})).replace("\\\\", "\\"):
        return "llama-bpe"
    raise UserError(
        f"export --format gguf: pre-tokenizer {json.dumps(pre)[:120]} is not one llama.cpp knows; use --format hf"
    )


def _permute(weight: np.ndarray, n_head: int) -> np.ndarray:
    """Hugging Face rotate-half q/k rows → GGML's interleaved rotary pairs."""
    return (
        weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def _encode(data: np.ndarray, quant: str) -> tuple[np.ndarray, Any]:
    import gguf

    if data.ndim == 1:  # norms stay in f32, as llama.cpp keeps them
        return data.astype(np.float32), None
    kind = {"f16": gguf.GGMLQuantizationType.F16, "bf16": gguf.GGMLQuantizationType.BF16,
            "q8_0": gguf.GGMLQuantizationType.Q8_0}[quant]
    if quant == "f16":
        return data.astype(np.float16), None
    return gguf.quants.quantize(data.astype(np.float32), kind), kind


def write_gguf(model: Any, tokenizer: Any, renderer: ChatRenderer, path: Path, quant: str, name: str) -> None:
    """Write `model` (a merged causal LM in float32) with its tokenizer and template to `path`."""
    import gguf

    cfg = model.config
    check_architecture(cfg)
    n_head, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH[ARCHITECTURES[cfg.model_type]]])
    writer.add_name(name)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_dimension_count(head_dim)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(float(getattr(cfg, "rope_theta", None) or cfg.rope_parameters["rope_theta"]))
    writer.add_vocab_size(cfg.vocab_size)
    file_type = {"f16": gguf.LlamaFileType.MOSTLY_F16, "bf16": gguf.LlamaFileType.MOSTLY_BF16,
                 "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[quant]
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _add_tokenizer(writer, tokenizer, renderer, cfg.vocab_size)
    _add_tensors(writer, model, quant, n_head, n_kv)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _add_tensors(writer: Any, model: Any, quant: str, n_head: int, n_kv: int) -> None:
    import gguf

    cfg = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[ARCHITECTURES[cfg.model_type]], cfg.num_hidden_layers)
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    for key, tensor in model.state_dict().items():
        if key.endswith("rotary_emb.inv_freq") or (tied and key == "lm_head.weight"):
            continue
        target = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise UserError(f"export --format gguf: no GGUF name for weight {key}; use --format hf")
        data = tensor.detach().to(torch.float32).cpu().numpy()
        if key.endswith(("q_proj.weight", "q_proj.bias")):
            data = _permute(data, n_head)
        elif key.endswith(("k_proj.weight", "k_proj.bias")):
            data = _permute(data, n_kv)
        encoded, raw_dtype = _encode(data, quant)
        writer.add_tensor(target, encoded, raw_dtype=raw_dtype)


def _add_tokenizer(writer: Any, tokenizer: Any, renderer: ChatRenderer, vocab_size: int) -> None:
    import gguf

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        tokenizer_json = json.loads((Path(tmp) / "tokenizer.json").read_text(encoding="utf-8"))
        special = gguf.SpecialVocab(tmp, load_merges=True, n_vocab=vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(detect_pre_tokenizer(tokenizer_json))
    by_id = {i: t for t, i in tokenizer.get_vocab().items()}
    added = {t.content: t.special for t in tokenizer.added_tokens_decoder.values()}
    tokens, types = [], []
    for token_id in range(vocab_size):
        text = by_id.get(token_id)
        if text is None:
            tokens.append(f"[PAD{token_id}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        tokens.append(text)
        if text in added:
            types.append(gguf.TokenType.CONTROL if added[text] else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special.chat_template = renderer.template or tokenizer.chat_template
    special.add_to_gguf(writer, quiet=True)
    writer.add_eot_token_id(renderer.end_of_turn_id)
