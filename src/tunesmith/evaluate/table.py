"""Console views of evaluation results: metrics side by side, and examples where two models differ."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

SHOWN = (
    "accuracy",
    "macro_f1",
    "rouge1",
    "rouge2",
    "rougeL",
    "exact_match",
    "json_valid",
    "eval_loss",
    "perplexity",
)


def print_metrics(results: dict[str, dict[str, Any]]) -> None:
    names = list(results)
    table = Table("metric", *names, *(["change"] if len(names) == 2 else []))
    for key in SHOWN:
        values = [results[n].get(key) for n in names]
        if all(v is None for v in values):
            continue
        row = [f"{v:.4f}" if isinstance(v, float) else "-" for v in values]
        first, second = values[0], values[-1]
        if len(names) == 2 and isinstance(first, float) and isinstance(second, float):
            row.append(f"{second - first:+.4f}")
        table.add_row(key, *row)
    Console().print(table)


def differing_examples(base: dict[str, Any], tuned: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """The examples whose outputs differ most: different outputs first, the tuned one right before
    the base one right, then by how little the two outputs share (ROUGE-L between them)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    ranked: list[tuple[float, float, dict[str, Any]]] = []
    for b, t in zip(base.get("examples", []), tuned.get("examples", []), strict=False):
        if b["output"] == t["output"]:
            continue
        overlap = scorer.score(b["output"], t["output"])["rougeL"].fmeasure
        gain = float(t["output"] == t["reference"]) - float(b["output"] == b["reference"])
        ranked.append(
            (
                -gain,
                overlap,
                {"input": b["input"], "reference": b["reference"], "base": b["output"], "tuned": t["output"]},
            )
        )
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in ranked[:count]]


def print_examples(examples: list[dict[str, Any]], base_name: str, run_name: str) -> None:
    console = Console()
    if not examples:
        console.print("the two models give the same outputs on the shown examples")
    for number, ex in enumerate(examples, 1):
        console.rule(f"example {number}")
        console.print(f"[bold]input[/bold]: {ex['input']}")
        console.print(f"[bold]reference[/bold]: {ex['reference']}")
        console.print(f"[bold]{base_name}[/bold]: {ex['base']}")
        console.print(f"[bold]{run_name}[/bold]: {ex['tuned']}")
