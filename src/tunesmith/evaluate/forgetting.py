"""Forgetting watch: perplexity on general text (not the user's domain) before and after training. A
model that got better at its task but much worse at ordinary English has forgotten what it knew
(catastrophic forgetting); the shipped set is 32 short encyclopedic paragraphs written for tunesmith,
and `eval.general_data` replaces it with the user's own (JSONL with a `text` field, or .txt files)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.data.records import TokenizedSample
from tunesmith.data.sources import load_source
from tunesmith.data.templates import tokenize_records
from tunesmith.errors import UserError
from tunesmith.evaluate.loss import build_eval_batches, compute_eval_loss
from tunesmith.modes import perplexity
from tunesmith.objectives.logprobs import TrainedTokenLM
from tunesmith.sections import SourceConfig

if TYPE_CHECKING:
    from tunesmith.config import RunConfig

GENERAL_TEXT = Path(__file__).with_name("general_text.jsonl")


def general_samples(cfg: RunConfig, tokenizer: Any) -> list[TokenizedSample]:
    """The general-text set tokenized as plain text (every token trained), cut at data.max_length."""
    path = cfg.eval.general_data or str(GENERAL_TEXT)
    if not Path(path).exists():
        raise UserError(f"eval.general_data: {path} does not exist")
    records = load_source(SourceConfig(path=path, format="text")).records
    data = cfg.data.model_copy(update={"truncation": "truncate", "system_prompt": None})
    samples = tokenize_records(records, tokenizer, None, data).samples  # type: ignore[arg-type]
    if not samples:
        raise UserError(f"eval.general_data: {path} holds no text")
    return samples


def general_perplexity(model: Any, samples: list[TokenizedSample], cfg: RunConfig, pad_id: int) -> float:
    """exp(mean token loss), batched as the run's own eval data is batched."""
    batches = build_eval_batches(samples, cfg, pad_id)
    return perplexity(compute_eval_loss(TrainedTokenLM(model), batches))
