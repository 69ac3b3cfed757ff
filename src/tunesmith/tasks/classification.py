"""Text classification (sentiment, intent, fraud / not fraud, topic) on encoders and decoders.

Two heads, chosen by `task.head`:
- `sequence` (default): a sequence-classification head (BERT: over [CLS]; decoders: over the last real
  token), trained with cross-entropy, optionally class-weighted.
- `generate`: the causal LM learns to answer a prompt with the label word; it predicts by scoring
  every label as the full answer (sum of its token log-probs, end-of-turn included) — rank
  classification, so it can never answer with something that is not a label.

Labels are read from the data (`data.label_field`) and numbered in a stable order (numerically when
every label is a number, else alphabetically); the list is saved as `labels.json` in the run folder.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from tunesmith.data.prepare import PreparedData, load_records, token_stats, train_and_held
from tunesmith.data.records import Conversation, LabeledText, Message, TokenizedSample
from tunesmith.data.templates import (
    IGNORE,
    ChatRenderer,
    TokenizeReport,
    tokenize_conversation,
    tokenize_records,
)
from tunesmith.engine.distributed import shared_map
from tunesmith.errors import UserError
from tunesmith.evaluate.metrics import classification_metrics
from tunesmith.models.load import ModelSource, load_causal_lm, pick_dtype
from tunesmith.modes import eval_mode
from tunesmith.objectives.classification import SequenceClassifierLoss, balanced_class_weights
from tunesmith.objectives.logprobs import TrainedTokenLM, sequence_logps
from tunesmith.sections import SourceConfig, TaskSection
from tunesmith.tasks.base import TaskDefaults
from tunesmith.tasks.instruction import needs_renderer

if TYPE_CHECKING:
    from tunesmith.config import RunConfig

MAX_LISTED = 10  # rows named in one error line


class ClassificationConfig(TaskSection):
    name: Literal["classification"] = "classification"
    record_format: ClassVar[str | None] = "classification"  # texts with labels (data.text_field, ...)
    head: Literal["auto", "sequence", "generate"] = Field(
        "auto",
        description="classification: sequence (a classification head; on decoders over the last token) or "
        "generate (the causal LM learns to answer with the label word); auto: sequence",
    )
    class_weights: Literal["none", "balanced"] = Field(
        "none", description="classification: weight the loss by inverse class frequency (balanced)"
    )
    resample: bool = Field(False, description="classification: oversample smaller classes up to the largest")
    prompt: str = Field(
        "Classify the text. Answer with one of: {labels}.\n\n{text}",
        description="classification with head generate: the user turn; {labels} and {text} are filled in",
    )

    @property
    def sequence_head(self) -> bool:
        return self.head != "generate"


class ClassificationTask(TaskDefaults):
    name = "classification"
    config: type[TaskSection] = ClassificationConfig

    def prepare(
        self, cfg: RunConfig, tokenizer: Any, renderer: ChatRenderer | None, labels: list[str] | None = None
    ) -> PreparedData:
        # a carved eval split keeps every class's share (stratified by label)
        train, held = train_and_held(cfg, lambda spec, is_train: read_labeled(spec, cfg, is_train), lambda r: r.label)
        labels = labels or label_names(train)
        if len(labels) < 2:
            raise UserError(
                f"data.train: every record has label {labels[0]!r}; classification needs two classes or more"
            )
        check_known_labels(held, labels)
        if cfg.task.resample:
            train = oversample(train, cfg.train.seed)
        report = tokenize_labeled(train, tokenizer, renderer, cfg, labels)
        stats = token_stats(report, cfg.data.max_length)
        stats["class_counts"] = dict(Counter(r.label for r in train))
        return PreparedData(
            train=report.samples,
            eval=tokenize_labeled(held, tokenizer, renderer, cfg, labels).samples,
            eval_records=[],
            formats=["classification"],
            stats=stats,
            labels=labels,
            eval_labeled=held,
        )

    def load_model(
        self, source: ModelSource, cfg: RunConfig, labels: list[str], tokenizer: Any = None, **extra: Any
    ) -> nn.Module:
        if not cfg.sequence_head:
            return load_causal_lm(source, cfg.model, **extra)  # type: ignore[no-any-return]
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(
            source.folder,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)},
            dtype=pick_dtype(cfg.model.dtype),
            trust_remote_code=cfg.model.trust_remote_code,
            **extra,
        )
        if model.config.pad_token_id is None and tokenizer is not None:
            model.config.pad_token_id = tokenizer.pad_token_id  # decoders pool the last non-pad token
        return model  # type: ignore[no-any-return]

    def objective(self, model: nn.Module, cfg: RunConfig, data: PreparedData) -> nn.Module:
        if not cfg.sequence_head:
            return TrainedTokenLM(model, cfg.train.label_smoothing)
        weights = None
        if cfg.task.class_weights == "balanced":
            counts = Counter(s.class_id for s in data.train)
            weights = balanced_class_weights([counts.get(i, 0) for i in range(len(data.labels))])
        return SequenceClassifierLoss(model, weights, cfg.train.label_smoothing)

    def metrics(
        self,
        model: nn.Module,
        tokenizer: Any,
        renderer: ChatRenderer | None,
        cfg: RunConfig,
        data: PreparedData,
    ) -> dict[str, Any]:
        records = data.eval_labeled[: cfg.eval.generation_limit]
        predicted = predict(model, tokenizer, renderer, cfg, records, data.labels)
        truth = [data.labels.index(str(r.label)) for r in records]
        scores = classification_metrics(truth, predicted, data.labels)
        scores["majority_class_accuracy"] = majority_class_accuracy(data, records)
        scores["predictions"] = [data.labels[i] for i in predicted]
        return scores


def majority_class_accuracy(data: PreparedData, records: list[LabeledText]) -> float:
    """The accuracy of always answering the training data's most common label (ties: the first label):
    the baseline a fresh head's chance-level "before" should be read against."""
    counts = {str(k): v for k, v in (data.stats.get("class_counts") or {}).items()}
    if not records or not counts:
        return 0.0
    majority = max(data.labels, key=lambda label: counts.get(label, 0))
    return sum(str(r.label) == majority for r in records) / len(records)


def read_labeled(spec: str | list[str | SourceConfig], cfg: RunConfig, is_train: bool = False) -> list[LabeledText]:
    columns = {"text": cfg.data.text_field, "label": cfg.data.label_field}
    if cfg.data.text_pair_field:
        columns["text_pair"] = cfg.data.text_pair_field
    as_labeled = {"format": "classification", "columns": columns}
    loaded = load_records(spec, cfg, is_train, lambda source: source.model_copy(update=as_labeled))
    records = [r for r in loaded if isinstance(r, LabeledText)]
    unlabeled = [r.source for r in records if r.label is None]
    if unlabeled:
        listed = ", ".join(unlabeled[:MAX_LISTED]) + (", ..." if len(unlabeled) > MAX_LISTED else "")
        raise UserError(
            f"{len(unlabeled)} record(s) have no label in field {cfg.data.label_field!r} (data.label_field): {listed}"
        )
    return records


def label_names(records: list[LabeledText]) -> list[str]:
    names = {str(r.label) for r in records}
    numeric = all(_is_number(n) for n in names)
    return sorted(names, key=float if numeric else str)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_known_labels(records: list[LabeledText], labels: list[str]) -> None:
    unseen = [r for r in records if r.label not in labels]
    if unseen:
        names = sorted({str(r.label) for r in unseen})
        where = ", ".join(r.source for r in unseen[:MAX_LISTED])
        raise UserError(
            f"eval label(s) {', '.join(map(repr, names))} never occur in training (known: {', '.join(labels)}): {where}"
        )


def oversample(records: list[LabeledText], seed: int) -> list[LabeledText]:
    """Every class repeated (whole copies plus a seeded random part) up to the largest class's count."""
    rng = random.Random(seed)
    by_class: dict[str, list[LabeledText]] = {}
    for record in records:
        by_class.setdefault(str(record.label), []).append(record)
    target = max(len(group) for group in by_class.values())
    out: list[LabeledText] = []
    for group in by_class.values():
        whole, rest = divmod(target, len(group))
        out.extend(group * whole + rng.sample(group, rest))
    return out


def label_prompt(record: LabeledText, cfg: RunConfig, labels: list[str]) -> list[Message]:
    text = record.text if record.text_pair is None else f"{record.text}\n\n{record.text_pair}"
    return [Message("user", cfg.task.prompt.format(labels=", ".join(labels), text=text))]


def tokenize_labeled(
    records: list[LabeledText],
    tokenizer: Any,
    renderer: ChatRenderer | None,
    cfg: RunConfig,
    labels: list[str],
) -> TokenizeReport:
    if not cfg.sequence_head:  # the label word is the assistant's answer
        chats = [
            Conversation([*label_prompt(r, cfg, labels), Message("assistant", str(r.label))], r.source)
            for r in records
        ]
        return tokenize_records(chats, tokenizer, needs_renderer(renderer), cfg.data)
    report = TokenizeReport(samples=[])
    for record in records:
        full = tokenizer(record.text, record.text_pair)["input_ids"]
        if len(full) > cfg.data.max_length:
            if cfg.data.truncation == "error":
                raise UserError(
                    f"{record.source}: text has {len(full)} tokens, more than data.max_length={cfg.data.max_length}"
                )
            if cfg.data.truncation == "drop":
                report.dropped_too_long += 1
                continue
            report.truncated += 1
            report.tokens_lost += len(full) - cfg.data.max_length
            full = tokenizer(record.text, record.text_pair, truncation=True, max_length=cfg.data.max_length)[
                "input_ids"
            ]
        class_id = labels.index(str(record.label))
        report.samples.append(
            TokenizedSample(list(full), [IGNORE] * len(full), record.source, class_id=class_id)
        )
    return report


def predict(
    model: nn.Module,
    tokenizer: Any,
    renderer: ChatRenderer | None,
    cfg: RunConfig,
    records: list[LabeledText],
    labels: list[str],
) -> list[int]:
    """The predicted class id of every record (shared between the ranks of a job)."""

    def scored(part: list[LabeledText]) -> list[int]:
        return class_scores(model, tokenizer, renderer, cfg, part, labels).argmax(-1).tolist()  # type: ignore[no-any-return]

    return shared_map(scored, records, model)


@torch.no_grad()
def class_scores(
    model: nn.Module,
    tokenizer: Any,
    renderer: ChatRenderer | None,
    cfg: RunConfig,
    records: list[LabeledText],
    labels: list[str],
) -> torch.Tensor:
    """(N, C) per-class scores: the head's logits, or the log-probability of each label word; a softmax
    over C gives the class probabilities either way."""
    device = next(model.parameters()).device
    with eval_mode(model):
        if cfg.sequence_head:
            return _predict_with_head(model, tokenizer, cfg, records, device)
        return _predict_by_scoring(model, needs_renderer(renderer), cfg, records, labels)


def _predict_with_head(
    model: nn.Module, tokenizer: Any, cfg: RunConfig, records: list[LabeledText], device: Any
) -> torch.Tensor:
    size = cfg.eval.batch_size or cfg.train.batch_size
    predicted: list[torch.Tensor] = []
    for start in range(0, len(records), size):
        chunk = records[start : start + size]
        pairs = [r.text_pair or "" for r in chunk] if cfg.data.text_pair_field else None
        enc = tokenizer(
            [r.text for r in chunk],
            pairs,
            truncation=True,
            max_length=cfg.data.max_length,
            padding=True,
            return_tensors="pt",
        )
        logits = model(
            input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)
        ).logits
        predicted.append(logits.float().cpu())
    return torch.cat(predicted)


def _predict_by_scoring(
    model: nn.Module,
    renderer: ChatRenderer,
    cfg: RunConfig,
    records: list[LabeledText],
    labels: list[str],
) -> torch.Tensor:
    candidates = [
        tokenize_conversation(
            Conversation([*label_prompt(r, cfg, labels), Message("assistant", name)], r.source),
            renderer,
            False,
        )
        for r in records
        for name in labels
    ]
    scores = sequence_logps(TrainedTokenLM(model), candidates, cfg.eval.batch_size or 8)
    return torch.tensor(scores).view(len(records), len(labels))
