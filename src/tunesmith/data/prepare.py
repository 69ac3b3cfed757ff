"""Config + tokenizer → tokenized train and eval samples, with the statistics printed before training."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from tunesmith.data.records import Conversation, LabeledText, Record, TokenizedSample
from tunesmith.data.sources import load_source, mix_sources, normalise_sources, split_eval
from tunesmith.data.templates import ChatRenderer, TokenizeReport, tokenize_records, with_system_prompt
from tunesmith.errors import UserError
from tunesmith.sections import SourceConfig

if TYPE_CHECKING:
    from tunesmith.config import RunConfig

DEFAULT_EVAL_SPLIT = 0.1
T = TypeVar("T")


@dataclass
class PreparedData:
    train: list[TokenizedSample]
    eval: list[TokenizedSample]
    eval_records: list[Conversation]  # for sample answers
    formats: list[str]  # detected format of each train source
    stats: dict[str, Any]
    train_records: list[Conversation] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # classification: class names in id order
    eval_labeled: list[LabeledText] = field(default_factory=list)  # classification: held-out texts
    general: list[TokenizedSample] = field(default_factory=list)  # forgetting watch: general text

    def eval_examples(self) -> list[tuple[str, str]]:
        """(input, reference) of the eval records, in the order the task predicts them."""
        if self.eval_labeled:
            return [(r.text, str(r.label)) for r in self.eval_labeled]
        return [(r.prompt_messages()[-1].content, r.last_answer()) for r in self.eval_records]


def prepare_data(cfg: RunConfig, tokenizer: Any, renderer: ChatRenderer) -> PreparedData:
    data = cfg.data
    train_sources = [load_source(s) for s in normalise_sources(data.train, data)]
    wanted = cfg.task.record_format
    bad = next((s for s in train_sources if wanted and s.format_name != wanted), None)
    if bad is not None:
        raise UserError(f"task {cfg.task.name} reads {wanted} records, but {bad.path} has format {bad.format_name}")
    train_records = mix_sources(train_sources, cfg.train.seed, cfg.data.num_mix_samples)
    eval_records: list[Record] = []
    if not cfg.eval.none:
        if data.eval is not None:
            eval_records = [r for s in normalise_sources(data.eval, data) for r in load_source(s).records]
        else:
            share = data.eval_split or DEFAULT_EVAL_SPLIT
            if len(train_records) < 2:
                raise UserError("data.train has one record: too few to hold some out; give data.eval")
            train_records, eval_records = split_eval(train_records, share, cfg.train.seed)
    train_report = tokenize_records(train_records, tokenizer, renderer, data)
    if not train_report.samples:
        raise UserError("no training sample is left after tokenization (all dropped); check data.max_length")
    eval_report = tokenize_records(eval_records, tokenizer, renderer, data)
    if not cfg.eval.none and not eval_report.samples:
        raise UserError("no eval sample is left after tokenization; check data.eval and data.max_length")
    return PreparedData(
        train=train_report.samples,
        eval=eval_report.samples,
        eval_records=[with_system_prompt(r, data.system_prompt) for r in eval_records if isinstance(r, Conversation)],
        train_records=[with_system_prompt(r, data.system_prompt) for r in train_records if isinstance(r, Conversation)],
        formats=[s.format_name for s in train_sources],
        stats=token_stats(train_report, data.max_length),
    )


def token_stats(report: TokenizeReport, max_length: int) -> dict[str, Any]:
    lengths = np.array([len(s) for s in report.samples])
    trained = sum(s.num_trained for s in report.samples)
    return {
        "samples": len(report.samples),
        "tokens": int(lengths.sum()),
        "trained_tokens": int(trained),
        "trained_share": float(trained / max(1, lengths.sum())),
        "length_min": int(lengths.min()),
        "length_mean": float(lengths.mean()),
        "length_p50": int(np.percentile(lengths, 50)),
        "length_p95": int(np.percentile(lengths, 95)),
        "length_max": int(lengths.max()),
        "max_length": max_length,
        "truncated": report.truncated,
        "tokens_lost_to_truncation": report.tokens_lost,
        "dropped_too_long": report.dropped_too_long,
        "dropped_no_trained_tokens": report.dropped_untrained,
    }


def prepare_file(path: str, cfg: RunConfig, tokenizer: Any, renderer: ChatRenderer) -> list[TokenizedSample]:
    """One data file tokenized exactly as a run's config tokenizes its eval data (for `tunesmith eval`)."""
    records = [r for s in normalise_sources(path, cfg.data) for r in load_source(s).records]
    samples = tokenize_records(records, tokenizer, renderer, cfg.data).samples
    if not samples:
        raise UserError(f"{path}: no sample is left after tokenization; check the file and data.max_length")
    return samples


def load_records(
    spec: Any, cfg: RunConfig, is_train: bool, update: Callable[[SourceConfig], SourceConfig] | None = None
) -> list[Record]:
    """The records of a data spec, the same way for every task: training sources mixed by weight (and
    `data.num_mix_samples`), eval sources one after another. UPDATE adjusts each source (a task's format)."""
    sources = [load_source(update(s) if update else s) for s in normalise_sources(spec, cfg.data)]
    if is_train:
        return mix_sources(sources, cfg.train.seed, cfg.data.num_mix_samples)
    return [r for s in sources for r in s.records]


def train_and_held(
    cfg: RunConfig, read: Callable[[Any, bool], list[T]], stratum: Callable[[T], Hashable] | None = None
) -> tuple[list[T], list[T]]:
    """(train, held-out) for tasks that read their own records: `data.eval` when given, else a seeded
    `data.eval_split` share (default 0.1) of train, stratified by STRATUM when given; no held-out data
    with `eval.none`. READ(spec, is_train) reads a data spec (see `load_records`)."""
    train = read(cfg.data.train, True)
    if cfg.eval.none:
        return train, []
    if cfg.data.eval is not None:
        return train, read(cfg.data.eval, False)
    return split_eval(train, cfg.data.eval_split or DEFAULT_EVAL_SPLIT, cfg.train.seed, stratum)
