"""Classification: sequence head and label generation on tiny decoders, label mapping, class weights,
metrics against scikit-learn's definitions, and the one-line errors for bad labelled data."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import write_jsonl
from tunesmith import train
from tunesmith.errors import UserError
from tunesmith.evaluate.metrics import classification_metrics
from tunesmith.objectives.classification import balanced_class_weights, classification_loss_sum

WORDS = {
    "positive": ["great", "lovely", "superb", "happy", "excellent"],
    "negative": ["awful", "broken", "terrible", "angry", "refund"],
    "neutral": ["tuesday", "parcel", "address", "invoice", "meeting"],
}


def sentiment_rows(
    n: int, seed: int, labels: tuple[str, ...] = ("positive", "negative", "neutral")
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        words = rng.sample(WORDS[label], 3) + rng.sample(["the", "a", "my", "this", "it"], 2)
        rng.shuffle(words)
        rows.append({"review": " ".join(words), "sentiment": label})
    return rows


def classification_config(
    make_config: Callable[..., dict[str, Any]], tmp_path: Path, **task: Any
) -> dict[str, Any]:
    train_file = write_jsonl(tmp_path / "cls-train.jsonl", sentiment_rows(60, 0))
    eval_file = write_jsonl(tmp_path / "cls-eval.jsonl", sentiment_rows(15, 1))
    return make_config(
        task={"name": "classification", **task},
        data={
            "train": str(train_file),
            "eval": str(eval_file),
            "text_field": "review",
            "label_field": "sentiment",
        },
        method={"name": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
        train={"max_steps": 15, "batch_size": 8, "lr": 2e-2},
    )


# the generate head must learn word → label-word from scratch on the random tiny model: full tuning,
# more steps; the real-model examples show it on SmolLM2
HEADS = {
    "sequence": ({}, {}, 0.6),
    "generate": (
        {"prompt": "{text}"},
        {"method": {"name": "full"}, "train": {"max_steps": 100, "lr": 1e-2}},
        0.45,
    ),
}


@pytest.mark.parametrize("head", list(HEADS))
def test_classification_learns_on_a_tiny_decoder(
    head: str, make_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    task, changes, floor = HEADS[head]
    config = classification_config(make_config, tmp_path, head=head, **task)
    for section, values in changes.items():
        config[section] = values if section == "method" else {**config[section], **values}
    result = train(config, quiet=True)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert json.loads((result.run_dir / "labels.json").read_text()) == ["negative", "neutral", "positive"]
    before, after = summary["eval_before"], summary["eval_after"]
    assert set(after) >= {"accuracy", "macro_f1", "per_class", "confusion_matrix", "eval_loss"}
    assert sum(map(sum, after["confusion_matrix"])) == 15
    assert after["accuracy"] > max(before["accuracy"], floor), (before["accuracy"], after["accuracy"])
    assert summary["eval_loss_after"] < summary["eval_loss_before"]
    assert before["majority_class_accuracy"] == pytest.approx(1 / 3)  # balanced classes: always one label


def test_metrics_match_sklearn_definitions() -> None:
    truth, pred = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 0, 2]
    scores = classification_metrics(truth, pred, ["a", "b", "c"])
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["per_class"]["b"] == {
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
        "f1": pytest.approx(0.8),
        "support": 2,
    }
    f1s = [1 / 2, 0.8, 2 / 3]  # a: p=1/2 r=1/2; b: p=2/3 r=1; c: p=1 r=1/2
    assert scores["macro_f1"] == pytest.approx(sum(f1s) / 3)
    assert scores["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_weighted_loss_matches_hand_computation() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    targets = torch.tensor([0, 1, 1])
    weights = balanced_class_weights([1, 2])  # N / (C · n_c) = 3/2, 3/4
    assert weights.tolist() == pytest.approx([1.5, 0.75])
    logp = torch.log_softmax(logits, -1)
    expected = -(1.5 * logp[0, 0] + 0.75 * logp[1, 1] + 0.75 * logp[2, 1])
    assert float(classification_loss_sum(logits, targets, weights)) == pytest.approx(float(expected))


def test_class_weights_and_resampling_run(make_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    rows = sentiment_rows(40, 0, ("positive", "negative"))[:30] + sentiment_rows(4, 3, ("neutral",))
    config = classification_config(make_config, tmp_path, class_weights="balanced", resample=True)
    config["data"]["train"] = str(write_jsonl(tmp_path / "imbalanced.jsonl", rows))
    config["train"]["max_steps"] = 2
    result = train(config, quiet=True)
    counts = result.summary["data"]["class_counts"]
    assert counts == {"positive": 15, "negative": 15, "neutral": 15}  # oversampled to the largest class


BAD = [
    (
        [
            {"review": "fine", "sentiment": "positive"},
            {"review": "meh"},
            {"review": "bad", "sentiment": "negative"},
            {"review": "x", "sentiment": ""},
        ],
        None,
        r"2 record\(s\) have no label in field 'sentiment' \(data.label_field\): .*train.jsonl:2, .*train.jsonl:4$",
    ),
    (
        [{"review": "fine", "sentiment": "positive"}, {"review": "good", "sentiment": "positive"}],
        None,
        r"data.train: every record has label 'positive'; classification needs two classes or more",
    ),
    (
        [{"review": "fine", "sentiment": "positive"}, {"review": "bad", "sentiment": "negative"}],
        [{"review": "so so", "sentiment": "mixed"}],
        r"eval label\(s\) 'mixed' never occur in training \(known: negative, positive\): .*eval.jsonl:1",
    ),
    (
        [{"review": "  ", "sentiment": "positive"}, {"review": "bad", "sentiment": "negative"}],
        None,
        r"train.jsonl:1: field 'review' is empty",
    ),
]


@pytest.mark.parametrize(("train_rows", "eval_rows", "message"), BAD)
def test_bad_labelled_data(
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]] | None,
    message: str,
    make_config: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    config = classification_config(make_config, tmp_path)
    config["data"]["train"] = str(write_jsonl(tmp_path / "train.jsonl", train_rows))
    if eval_rows is not None:
        config["data"]["eval"] = str(write_jsonl(tmp_path / "eval.jsonl", eval_rows))
    with pytest.raises(UserError, match=message) as info:
        train(config, quiet=True)
    assert "\n" not in info.value.message
    assert not (tmp_path / "runs" / "t").exists()
