"""The model card (README.md) of an export: what the model is, what it was trained on, how it scored
before and after, what the run's watches said, and where it should not be used. Everything comes from
the run folder; nothing is invented when the run did not measure it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.runs.folder import RunFolder
from tunesmith.runs.tuned import RunModel

CARD_MARK = "<!-- written by tunesmith export -->"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _metrics_table(summary: dict[str, Any]) -> list[str]:
    before, after = summary.get("eval_before") or {}, summary.get("eval_after") or {}
    keys = [k for k in after if isinstance(after[k], int | float)]
    if not keys:
        return ["No evaluation was recorded for this run."]
    rows = ["| metric (held-out eval set) | base model | tuned |", "|---|---:|---:|"]
    rows += [f"| {k} | {_fmt(before.get(k, '-'))} | {_fmt(after[k])} |" for k in keys]
    return rows


def _watches(summary: dict[str, Any]) -> list[str]:
    lines = []
    for note in summary.get("data_check") or []:
        lines.append(f"- {note}")
    if not summary.get("data_check"):
        lines.append("- data check: no findings recorded at training time")
    memo = summary.get("memorization") or {}
    if memo.get("message"):
        flag = " **(flagged)**" if memo.get("flagged") else ""
        lines.append(f"- {memo['message']}{flag}")
    forgetting = summary.get("forgetting") or {}
    if forgetting.get("general_perplexity_before") is not None:
        lines.append(
            f"- forgetting: general-English perplexity {forgetting['general_perplexity_before']:.2f} → "
            f"{forgetting['general_perplexity_after']:.2f} ({forgetting['relative_change']:+.1%})"
        )
    over = summary.get("overfitting") or {}
    lines.append(f"- overfitting watch: {over.get('message') or 'no warning'}")
    for gate in summary.get("gates") or []:
        lines.append(f"- gate {'passed' if gate.get('passed') else 'FAILED'}: {gate.get('message')}")
    return lines


def model_card(run: RunModel, fmt: str, artifact: str, verification: dict[str, Any], data_fingerprint: str) -> str:
    folder = RunFolder(run.path)
    summary = json.loads(folder.summary.read_text()) if folder.summary.is_file() else {}
    cfg = run.config
    method = cfg.method.model_dump(exclude_defaults=True)
    data = summary.get("data") or {}
    train_name = Path(cfg.data.train).name if isinstance(cfg.data.train, str) else "the training data"
    lines = [
        CARD_MARK,
        f"# {run.path.name}",
        "",
        f"A fine-tune of **{cfg.model.path}** made with tunesmith ({cfg.task.name} task, method "
        f"`{cfg.method.name}`). Export format: `{fmt}` ({artifact}).",
        "",
        "## Training",
        f"- base model: `{cfg.model.path}`",
        f"- method: `{json.dumps(method)}`",
        f"- data: `{cfg.data.train}` (fingerprint {data_fingerprint}); {data.get('samples', '?')} samples, "
        f"{data.get('tokens', '?')} tokens, {data.get('trained_tokens', '?')} trained",
        f"- steps: {summary.get('steps', '?')}, status: {summary.get('status', '?')}, "
        f"stop reason: {summary.get('stop_reason', '?')}",
        f"- chat template: `{cfg.data.chat_template}`; system prompt: {cfg.data.system_prompt or 'none'}",
        "",
        "## Evaluation (before → after)",
        *_metrics_table(summary),
        "",
        "## Watches",
        *_watches(summary),
        "",
        "## Export verification",
        "The exported artifact was loaded back by the tools that will run it and compared with the trained "
        "model on fixed probe prompts (greedy continuations, per-token log-probabilities):",
        "",
        "```json",
        json.dumps(verification, indent=2),
        "```",
        "",
        "## Intended use and limits",
        f"Intended for the domain of its training data (`{train_name}`): "
        "answers in the style and format it was tuned on. It inherits the base model's limits and biases; "
        "it was trained on a small data set, so check its answers on your own held-out cases before use, and "
        "do not use it for decisions about people without human review.",
        "",
    ]
    return "\n".join(lines)
