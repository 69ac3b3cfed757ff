"""Task metrics from maintained libraries: scikit-learn for classification, Google's `rouge-score`
for ROUGE. Computed here: exact match and JSON validity (one line each), and the field score of
structured answers ("Flag: ... Next step: ..."), which no library parses."""

from __future__ import annotations

import json
import re
from typing import Any


def classification_metrics(y_true: list[int], y_pred: list[int], labels: list[str]) -> dict[str, Any]:
    """accuracy, macro_f1 (over every known class), per_class precision/recall/f1/support, and the
    confusion matrix (rows: true class, columns: predicted, in label-id order)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(labels)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "labels": labels,
    }


def generation_metrics(predictions: list[str], references: list[str]) -> dict[str, Any]:
    """Mean ROUGE-1/2/L F1 (stemmed), exact match after whitespace normalisation, and the share of
    predictions that parse as JSON (for structured extraction)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = [scorer.score(ref, pred) for pred, ref in zip(predictions, references, strict=True)]
    n = max(len(scores), 1)
    return {
        "rouge1": sum(s["rouge1"].fmeasure for s in scores) / n,
        "rouge2": sum(s["rouge2"].fmeasure for s in scores) / n,
        "rougeL": sum(s["rougeL"].fmeasure for s in scores) / n,
        "exact_match": sum(_norm(p) == _norm(r) for p, r in zip(predictions, references, strict=True)) / n,
        "json_valid": sum(_is_json(p) for p in predictions) / n,
        "num_examples": len(scores),
    }


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):  # a model's "[[[[..." output is invalid JSON, not a crash
        return False
    return True


def answer_field(text: str, name: str) -> str | None:
    """The value of the first `Name: value` field in an answer (up to the sentence's or the line's end),
    normalised (case, spacing, a trailing full stop); None when the answer has no such field."""
    found = re.search(rf"(?<!\w){re.escape(name)}\s*:\s*(.*?)\s*(?:\.(?=\s|$)|\n|$)", text, re.IGNORECASE)
    return _norm(found.group(1)) if found else None


def _field_right(given: str | None, expected: str | None) -> bool:
    return given is not None and given == expected


def field_scores(predictions: list[str], references: list[str], fields: list[str]) -> dict[str, Any]:
    """task_score: the share of answers whose every named field equals the reference's (a missing field is
    wrong); field_accuracy: that share per field; correct: per answer, for the predictions file."""
    hits = [
        [_field_right(answer_field(p, name), answer_field(r, name)) for name in fields]
        for p, r in zip(predictions, references, strict=True)
    ]
    n = max(len(hits), 1)
    return {
        "task_score": sum(all(h) for h in hits) / n,
        "field_accuracy": {name: sum(h[i] for h in hits) / n for i, name in enumerate(fields)},
        "correct": [all(h) for h in hits],
    }
