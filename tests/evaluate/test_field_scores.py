"""task.score_fields: the fields of structured answers parsed and compared with the reference's."""

from __future__ import annotations

from typing import Any

from tunesmith.evaluate.metrics import answer_field, field_scores

REFERENCE = "Flag: new country. Why: your card had never been used in Peru. Next step: confirm your trip in the app."


def test_answer_field_reads_up_to_the_sentence_end() -> None:
    assert answer_field(REFERENCE, "Flag") == "new country"
    assert answer_field(REFERENCE, "Next step") == "confirm your trip in the app"
    assert answer_field("flag:  New   Country\nmore", "Flag") == "new country"  # case, spacing, the line's end
    assert answer_field("Amount: 4.5 EUR. Done", "Amount") == "4.5 eur"  # a decimal point is no sentence end
    assert answer_field("Why: no flag here.", "Flag") is None
    assert answer_field("Redflag: x.", "Flag") is None  # a whole field name, not a word's tail


def test_task_score_needs_every_field_right() -> None:
    predictions = [
        REFERENCE,  # right
        "Flag: new country. Why: something else entirely. Next step: confirm your trip in the app",  # why is free
        "Flag: new device. Why: x. Next step: confirm your trip in the app.",  # wrong flag
        "Your card was used in Peru for the first time; please confirm your trip in the app.",  # no fields
    ]
    scores = field_scores(predictions, [REFERENCE] * 4, ["Flag", "Next step"])
    assert scores["correct"] == [True, True, False, False]
    assert scores["task_score"] == 0.5
    assert scores["field_accuracy"] == {"Flag": 0.5, "Next step": 0.75}


def test_a_reference_without_the_field_scores_nothing_right() -> None:
    scores = field_scores(["Flag: x."], ["no fields at all"], ["Flag"])
    assert scores["correct"] == [False] and scores["task_score"] == 0.0


def test_a_generation_run_writes_its_scored_predictions(make_config: Any) -> None:
    """predictions_before/after.jsonl: one row per scored eval record, its `correct` agreeing with task_score."""
    import json

    from tunesmith import train

    config = make_config(task={"name": "generation", "score_fields": ["Flag"]}, eval={"max_new_tokens": 4})
    result = train(config, quiet=True)
    for when in ("before", "after"):
        rows = [json.loads(line) for line in (result.run_dir / f"predictions_{when}.jsonl").read_text().splitlines()]
        scores = result.summary[f"eval_{when}"]
        assert len(rows) == scores["num_examples"] == 2
        assert set(rows[0]) == {"input", "reference", "output", "correct"}
        assert sum(r["correct"] for r in rows) / len(rows) == scores["task_score"]
