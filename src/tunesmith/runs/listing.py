"""`tunesmith runs` output: a table (or JSON) of registry rows."""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Console
from rich.table import Table

STATUS_STYLE = {
    "finished": "green",
    "running": "cyan",
    "failed": "red",
    "failed-gate": "red",
    "interrupted": "yellow",
}


def when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "-"


def duration(run: dict[str, Any]) -> str:
    if not run["started_at"]:
        return "-"
    seconds = (run["ended_at"] or time.time()) - run["started_at"]
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def print_runs(runs: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(runs, indent=2, default=str))
        return
    table = Table("id", "name", "status", "method", "model", "started", "took", "eval loss", title="runs")
    for run in runs:
        metrics = run["metrics"]
        before, after = metrics.get("eval_loss_before"), metrics.get("eval_loss_after")
        loss = (
            f"{before:.3f} → {after:.3f}" if isinstance(before, float) and isinstance(after, float) else "-"
        )
        style = STATUS_STYLE.get(run["status"], "")
        table.add_row(
            str(run["id"]),
            run["name"],
            f"[{style}]{run['status']}[/]" if style else run["status"],
            run["method"] or "-",
            run["model"] or "-",
            when(run["started_at"]),
            duration(run),
            loss,
        )
    if not runs:
        table.add_row("-", "no runs yet", "", "", "", "", "", "")
    Console().print(table)


def print_run(run: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(run, indent=2, default=str))
        return
    table = Table(show_header=False, title=f"run {run['id']}: {run['name']}")
    for key, value in run.items():
        if key == "metrics":
            continue
        shown = when(value) if key.endswith("_at") else "-" if value is None else str(value)
        table.add_row(key, shown)
    for key, value in run["metrics"].items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console().print(table)
