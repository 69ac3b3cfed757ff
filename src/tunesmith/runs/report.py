"""`report.html`: one self-contained page per run (or one overlaying several) read from run folders only —
loss curves (train and eval on the same axes), learning rate, grad norm, throughput, memory, the
overfitting watch, the memorization probe, the forgetting watch and gates, data statistics, eval metrics
before vs after, and sample generations side by side."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.charts import bar_chart, line_chart, page
from tunesmith.errors import UserError
from tunesmith.files import atomic_write_text
from tunesmith.runs.folder import RunFolder

REPORT_FILE = "report.html"
# step-record keys with their own chart (or none); every other numeric key gets an "other" chart
KNOWN_STEP_KEYS = {
    "step",
    "loss",
    "train_loss_smoothed",
    "lr",
    "grad_norm",
    "real_tokens_per_s",
    "padded_tokens_per_s",
    "padding_fraction",
    "peak_memory_mb",
    "peak_rss_mb",
    "cuda_max_allocated_mb",
    "step_seconds",
    "trained_tokens",
}
MAX_OTHER_CHARTS = 8


@dataclass
class RunView:
    """What a report shows of one run folder (readers only read)."""

    path: Path
    summary: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)  # training-step records
    evals: list[dict[str, Any]] = field(default_factory=list)  # evaluation records
    skipped_lines: int = 0  # metrics lines that did not parse (a run killed mid-write)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "running or killed (no summary.json)"))


def read_run_view(path: Path) -> RunView:
    run = RunFolder(Path(path))
    if not run.path.is_dir():
        raise UserError(f"{path} is not a folder; give a run folder (output.dir/output.name)")
    if not any(p.is_file() for p in (run.config, run.metrics, run.summary)):
        raise UserError(f"{path} is not a run folder: it has no config.yaml, metrics.jsonl or summary.json")
    view = RunView(run.path, _read_summary(run.summary))
    if run.metrics.is_file():
        for line in run.metrics.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                view.skipped_lines += 1
                continue
            if isinstance(record, dict) and "loss" in record:
                view.steps.append(record)
            elif isinstance(record, dict) and "eval_loss" in record:
                view.evals.append(record)
    return view


def _read_summary(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        summary = json.loads(path.read_text())
    except ValueError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); the run's summary is damaged") from None
    return summary if isinstance(summary, dict) else {}


def write_report(paths: list[Path], out: Path | None = None) -> tuple[Path, list[str]]:
    """Render and write the report; returns (where, notes for the console)."""
    views = [read_run_view(p) for p in paths]
    if out is None:
        out = views[0].path / REPORT_FILE if len(views) == 1 else Path(REPORT_FILE)
    body = render_run(views[0]) if len(views) == 1 else render_overlay(views)
    title = (
        f"tunesmith run {views[0].name}"
        if len(views) == 1
        else f"tunesmith runs: {', '.join(v.name for v in views)}"
    )
    atomic_write_text(out, page(title, body))
    return out, [note for view in views for note in notes_of(view)]


def notes_of(view: RunView) -> list[str]:
    notes = []
    if not view.steps:
        notes.append(
            f"{view.name}: no training step was recorded (status: {view.status}); the report shows what exists"
        )
    if view.skipped_lines:
        notes.append(f"{view.name}: {view.skipped_lines} unreadable lines in metrics.jsonl were skipped")
    return notes


def series(records: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    return [
        (r["step"], r[key])
        for r in records
        if isinstance(r.get(key), int | float) and isinstance(r.get("step"), int | float)  # a foreign file: skip
    ]


def run_charts(view: RunView) -> list[str]:
    """The training curves of one run, as SVG charts (the report's, and the studio's live ones)."""
    steps, evals = view.steps, view.evals
    charts = [
        line_chart(
            "loss",
            {
                "train loss": series(steps, "loss"),
                "train loss (smoothed)": series(steps, "train_loss_smoothed"),
                "eval loss": series(evals, "eval_loss"),
            },
            y_label="loss per token",
            dashed=("train loss (smoothed)",),
        ),
        line_chart("learning rate", {"lr": series(steps, "lr")}),
        line_chart("gradient norm (before clipping)", {"grad_norm": series(steps, "grad_norm")}),
        line_chart(
            "throughput",
            {
                "real tokens/s": series(steps, "real_tokens_per_s"),
                "padded tokens/s": series(steps, "padded_tokens_per_s"),
            },
        ),
        line_chart(
            "memory (MB)",
            {
                "peak RSS": series(steps, "peak_rss_mb"),
                "CUDA max allocated": series(steps, "cuda_max_allocated_mb"),
            },
        ),
        line_chart(
            "generalization gap (eval − smoothed train loss)", {"gap": series(evals, "generalization_gap")}
        ),
    ]
    charts += other_charts(steps)
    return [c for c in charts if c]


def render_run(view: RunView) -> str:
    s = view.summary
    charts = run_charts(view)
    parts = [
        banners(view),
        overview_table(view),
        f'<h2>Training curves</h2><div class="charts">{"".join(c for c in charts if c)}</div>',
        overfitting_section(s.get("overfitting")),
        memorization_section(s.get("memorization")),
        forgetting_section(s.get("forgetting"), s.get("gates") or []),
        metrics_table(s.get("eval_before") or {}, s.get("eval_after") or {}),
        key_value_section("Data statistics", s.get("data") or {}),
        samples_section(s.get("samples") or []),
    ]
    return "".join(parts)


def banners(view: RunView) -> str:
    s = view.summary
    out = []
    if view.status in ("failed", "interrupted") or not view.steps:
        at = f" at step {html.escape(str(view.steps[-1]['step']))}" if view.steps else " before its first training step"
        out.append(f'<p class="bad">status <b>{html.escape(view.status)}</b>{at}</p>')
    elif view.status == "failed-gate":
        out.append(
            '<p class="bad">status <b>failed-gate</b>: the run finished below a quality gate (see Gates)</p>'
        )
    else:
        out.append(
            f'<p class="ok">status <b>{html.escape(view.status)}</b>; {html.escape(str(s.get("stop_reason", "")))}</p>'
        )
    overfit = s.get("overfitting") or {}
    if overfit.get("warned"):
        out.append(f'<p class="warn">{html.escape(overfit["message"])}</p>')
    memo = s.get("memorization") or {}
    if memo.get("flagged"):
        out.append(f'<p class="warn">{html.escape(memo["message"])}</p>')
    return "".join(out)


OVERVIEW_KEYS = (
    "method",
    "model",
    "steps",
    "best_step",
    "best_eval_loss",
    "eval_loss_before",
    "eval_loss_after",
    "trainable_params",
    "total_params",
    "trainable_state_mb",
    "real_tokens_per_s",
    "padding_fraction",
    "peak_memory_mb",
    "train_s",
    "wall_s",
    "registry_id",
)


def overview_table(view: RunView) -> str:
    rows = {k: view.summary[k] for k in OVERVIEW_KEYS if k in view.summary}
    return key_value_section(f"Run {view.name}", {"folder": str(view.path), **rows})


def fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def key_value_section(title: str, values: dict[str, Any]) -> str:
    if not values:
        return ""
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{fmt(v)}</td></tr>"
        for k, v in values.items()
        if not isinstance(v, (dict, list))
    )
    return f"<h2>{html.escape(title)}</h2><table>{rows}</table>"


def other_charts(steps: list[dict[str, Any]]) -> list[str]:
    """Objective-specific step numbers (rewards, KL, margins, ...): one chart each."""
    keys = sorted(
        {k for r in steps for k, v in r.items() if isinstance(v, (int, float)) and k not in KNOWN_STEP_KEYS}
    )
    return [line_chart(key, {key: series(steps, key)}) for key in keys[:MAX_OTHER_CHARTS]]


def overfitting_section(overfit: dict[str, Any] | None) -> str:
    if not overfit:
        return ""
    verdict = overfit["message"] or "no sign of overfitting: eval loss did not rise while train loss fell"
    return key_value_section(
        "Overfitting watch",
        {
            "verdict": verdict,
            "evaluations": overfit.get("evaluations"),
            "gap at first evaluation": overfit.get("gap_first"),
            "gap at last evaluation": overfit.get("gap_last"),
            "gap trend per 100 steps": overfit.get("gap_trend_per_100_steps"),
        },
    )


def memorization_section(memo: dict[str, Any] | None) -> str:
    if not memo:
        return "<h2>Memorization probe</h2><p>not run for this task / configuration</p>"
    rows = [
        ("completed verbatim", f"{memo['train_verbatim_rate']:.0%}", f"{memo['heldout_verbatim_rate']:.0%}"),
        (
            "per-token loss of the rest",
            f"{memo['train_token_loss']:.4f}",
            f"{memo['heldout_token_loss']:.4f}",
        ),
        ("samples", str(memo["train_samples"]), str(memo["heldout_samples"])),
    ]
    table = (
        "<table><tr><th></th><th>training records</th><th>held-out records</th></tr>"
        + "".join(
            f"<tr><th>{html.escape(name)}</th><td>{html.escape(train)}</td><td>{html.escape(held)}</td></tr>"
            for name, train, held in rows
        )
        + "</table>"
    )
    chart = bar_chart(
        "verbatim completion rate",
        {"training": memo["train_verbatim_rate"], "held-out": memo["heldout_verbatim_rate"]},
    )
    return f"<h2>Memorization probe</h2><p>{html.escape(memo['message'])}</p>{table}{chart}"


def forgetting_section(forgetting: dict[str, Any] | None, gates: list[dict[str, Any]]) -> str:
    out = ""
    if forgetting:
        out += key_value_section("Forgetting watch (general-text perplexity)", forgetting)
    if gates:
        rows = "".join(
            f"<tr><td>{html.escape(g['metric'])}</td><td>{html.escape(json.dumps(g['rule']))}</td>"
            f"<td>{fmt(g['before'])}</td><td>{fmt(g['after'])}</td>"
            f'<td class="{"ok" if g["passed"] else "bad"}">{"passed" if g["passed"] else "FAILED"}</td>'
            f"<td>{html.escape(g['message'])}</td></tr>"
            for g in gates
        )
        out += (
            "<h2>Gates</h2><table><tr><th>metric</th><th>rule</th><th>before</th><th>after</th><th></th><th></th></tr>"
            f"{rows}</table>"
        )
    return out


def metrics_table(before: dict[str, Any], after: dict[str, Any]) -> str:
    keys = [k for k in {**before, **after} if isinstance(after.get(k, before.get(k)), (int, float))]
    if not keys:
        return ""
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{fmt(before.get(k))}</td><td>{fmt(after.get(k))}</td></tr>"
        for k in keys
    )
    return f"<h2>Eval metrics</h2><table><tr><th>metric</th><th>before</th><th>after</th></tr>{rows}</table>"


def samples_section(samples: list[dict[str, Any]]) -> str:
    if not samples:
        return ""
    blocks = "".join(
        f"<h3>{html.escape(str(s.get('prompt', '')))}</h3>"
        f'<div class="side"><div><b>before</b>\n{html.escape(str(s.get("before", "")))}</div>'
        f"<div><b>after</b>\n{html.escape(str(s.get('after', '')))}</div>"
        f"<div><b>reference</b>\n{html.escape(str(s.get('reference', '')))}</div></div>"
        for s in samples
    )
    return f"<h2>Sample generations, before vs after</h2>{blocks}"


def render_overlay(views: list[RunView]) -> str:
    def overlay(key: str, source: str) -> dict[str, list[tuple[float, float]]]:
        return {v.name: series(v.steps if source == "steps" else v.evals, key) for v in views}

    charts = [
        line_chart("train loss", overlay("loss", "steps"), y_label="loss per token"),
        line_chart("eval loss", overlay("eval_loss", "evals"), y_label="loss per token"),
        line_chart("learning rate", overlay("lr", "steps")),
        line_chart("throughput (real tokens/s)", overlay("real_tokens_per_s", "steps")),
        line_chart("peak RSS (MB)", overlay("peak_rss_mb", "steps")),
    ]
    header = "".join(f"<th>{html.escape(v.name)}</th>" for v in views)
    rows = "".join(
        f"<tr><th>{key}</th>" + "".join(f"<td>{fmt(v.summary.get(key))}</td>" for v in views) + "</tr>"
        for key in ("status", *OVERVIEW_KEYS)
    )
    return (
        f"<h2>Runs</h2><table><tr><th></th>{header}</tr>{rows}</table>"
        f'<h2>Curves</h2><div class="charts">{"".join(c for c in charts if c)}</div>'
    )
