"""What the user sees: token statistics, parameter counts, a progress bar with ETA, the final summary.

The Reporter is also the callback that writes `metrics.jsonl` and `train.log`, so the console and the
run folder always show the same numbers.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tunesmith.engine.callbacks import Event, LoopState
from tunesmith.runs.folder import RunFolder

# task metrics shown (before → after) in the end-of-run table when the task has them
HEADLINE_METRICS = (
    "task_score",
    "accuracy",
    "macro_f1",
    "rouge1",
    "rougeL",
    "exact_match",
    "json_valid",
    "pref_accuracy",
    "reward_margin",
    "pair_accuracy",
    "mean_reward",
    "kl",
)


class Reporter:
    def __init__(self, run: RunFolder, quiet: bool = False, log_every: int = 1, writes: bool = True) -> None:
        self.run = run
        self.writes = writes  # False on the ranks of a multi-process run other than 0: rank 0 writes the files
        self.log_every = log_every  # train.log_every_steps
        self.console = Console(stderr=True, quiet=quiet, highlight=False)
        self.progress: Progress | None = None
        self.task: Any = None
        self.quiet = quiet

    def say(self, text: str) -> None:
        self.console.print(text)
        if self.writes:
            self.run.log_line(text)

    def data_stats(self, stats: dict[str, Any], formats: list[str]) -> None:
        table = Table(title=f"training data ({', '.join(formats)})", show_header=False)
        for key, value in stats.items():
            table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
        self.console.print(table)
        if self.writes:
            self.run.log_line("data " + json.dumps(stats))

    def parameters(self, trainable: int, total: int, method: str, state_mb: float) -> None:
        self.say(
            f"method {method}: trainable params {trainable:,} / {total:,} ({100 * trainable / total:.3f}%); "
            f"trainable state (weights + grads + AdamW) {state_mb:,.1f} MB"
        )

    def start(self, state: LoopState) -> None:
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=self.quiet,
        )
        self.task = self.progress.add_task("train", total=state.total_steps, completed=state.step, info="")
        self.progress.start()

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()

    def callback(self, event: Event, state: LoopState, record: dict[str, Any]) -> None:
        if not self.writes:
            return
        if event in (Event.STEP_END, Event.EVALUATE):
            self.run.append_metrics(record)
        if event is Event.STEP_END:
            info = f"loss {record['loss']:.4f}"
            if state.last_eval_loss is not None:
                info += f" eval {state.last_eval_loss:.4f}"
            info += f" {record['real_tokens_per_s']:.0f} tok/s"
            if self.progress is not None:
                self.progress.update(self.task, completed=state.step, info=info)
            if not self.console.is_terminal and state.step % max(1, state.total_steps // 10) == 0:
                self.console.print(f"step {state.step}/{state.total_steps} {info}")  # no live bar in a log
            if state.step % self.log_every == 0 or state.step == state.total_steps:
                self.run.log_line(f"step {state.step}/{state.total_steps} {info}")
        elif event is Event.EVALUATE:
            self.say(
                f"step {record['step']}: eval loss {record['eval_loss']:.4f} (ppl {record['eval_perplexity']:.2f})"
            )

    def summary(self, summary: dict[str, Any]) -> None:
        def fmt(value: Any) -> str:
            return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)

        table = Table(title="run summary", show_header=False)
        for key in (
            "status",
            "stop_reason",
            "best_step",
            "eval_loss_before",
            "eval_loss_after",
            "trainable_params",
            "total_params",
            "real_tokens_per_s",
            "padding_fraction",
            "peak_memory_mb",
            "steps",
            "wall_s",
            "run_dir",
        ):
            table.add_row(key, fmt(summary.get(key)))
        before, after = summary.get("eval_before") or {}, summary.get("eval_after") or {}
        for key in HEADLINE_METRICS:
            if key in after:
                table.add_row(key, f"{fmt(before.get(key))} → {fmt(after[key])}")
        for key, value in watch_lines(summary):
            table.add_row(key, value)
        self.console.print(table)
        self.run.log_line(
            "summary "
            + json.dumps(
                {k: v for k, v in summary.items() if k not in ("samples", "eval_before", "eval_after")},
                default=str,
            )
        )


def watch_lines(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The overfitting, memorization, forgetting and gate verdicts, one row each."""
    rows = []
    overfit = summary.get("overfitting") or {}
    if overfit.get("evaluations"):
        rows.append(
            ("overfitting", "WARNING: eval rose while train fell" if overfit["warned"] else "no sign")
        )
    memo = summary.get("memorization")
    if memo:
        verdict = " (FLAGGED)" if memo["flagged"] else ""
        rows.append(
            (
                "memorization",
                f"{memo['train_verbatim_rate']:.0%} train vs {memo['heldout_verbatim_rate']:.0%} held-out verbatim{verdict}",
            )
        )
    forgetting = summary.get("forgetting")
    if forgetting:
        rows.append(
            (
                "general perplexity",
                f"{forgetting['general_perplexity_before']:.2f} → {forgetting['general_perplexity_after']:.2f} "
                f"({forgetting['relative_change']:+.1%})",
            )
        )
    for gate in summary.get("gates") or []:
        rows.append((f"gate {gate['metric']}", "passed" if gate["passed"] else f"FAILED: {gate['message']}"))
    return rows
