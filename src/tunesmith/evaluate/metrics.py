"""Task metrics from maintained libraries: scikit-learn for classification, Google's `rouge-score`
for ROUGE. Only exact match and JSON validity are computed here (one line each)."""

from __future__ import annotations

import json
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
