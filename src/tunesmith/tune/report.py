"""What a search found: the trials as a table (console and `tune show`), `best.yaml` (the best trial's
config, ready to run), and an offline HTML report (metric per trial, best so far, parameter importances,
parallel coordinates, every trial's curves overlaid), drawn with the project's own SVG charts."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import yaml

from tunesmith.charts import bar_chart, line_chart, page, parallel_chart
from tunesmith.files import atomic_write_text
from tunesmith.runs.report import read_run_view, render_overlay
from tunesmith.tune.search import params_text, trial_note

BEST_FILE = "best.yaml"
REPORT_FILE = "report.html"


def trial_rows(study: Any) -> list[dict[str, Any]]:
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        state = trial.state.name.lower()
        note = trial_note(attrs)
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() \
            if trial.datetime_complete and trial.datetime_start else None
        rows.append({"number": trial.number, "run": attrs.get("run", f"trial-{trial.number}"),
                     "state": "skipped" if attrs.get("skipped") else state, "value": trial.value,
                     "params": dict(trial.params), "note": note, "seconds": seconds})
    return rows


def best_trial(study: Any) -> Any | None:
    try:
        return study.best_trial
    except ValueError:  # no finished trial yet
        return None


def write_best(folder: Path, study: Any, output_dir: str) -> Path | None:
    """best.yaml: the config the best trial trained with (its run folder's config.yaml), writing its run
    to output_dir/<study>-best, so it can be run as it is: `tunesmith train best.yaml`."""
    best = best_trial(study)
    if best is None:
        return None
    config_path = folder / best.user_attrs.get("run", f"trial-{best.number}") / "config.yaml"
    if not config_path.is_file():
        return None
    config = yaml.safe_load(config_path.read_text()) or {}
    config["output"] = {**config.get("output", {}), "dir": output_dir, "name": f"{folder.name}-best"}
    header = (f"# best trial of study {folder.name}: trial-{best.number}, {study.direction.name.lower()} "
              f"value {best.value:.6g}\n# params: {best.params}\n")
    path = folder / BEST_FILE
    atomic_write_text(path, header + yaml.safe_dump(config, sort_keys=False))
    return path


def importances(study: Any) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA); empty until there are enough finished trials."""
    import optuna

    finished = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(finished) < 3 or not any(len({repr(t.params.get(k)) for t in finished}) > 1 for k in finished[0].params):
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (ValueError, RuntimeError):
        return {}


def write_report(folder: Path, study: Any, metric: str) -> Path:
    rows = trial_rows(study)
    done = [r for r in rows if r["state"] == "complete" and _finite(r["value"])]
    minimize = study.direction.name == "MINIMIZE"
    charts = [bar_chart(f"{metric} per trial", {r["run"]: float(r["value"]) for r in done})]
    best_so_far, best = [], None
    for r in sorted(done, key=lambda r: r["number"]):
        value = float(r["value"])
        best = value if best is None or (value < best if minimize else value > best) else best
        best_so_far.append((r["number"], best))
    charts.append(line_chart(f"best {metric} so far", {"best so far": best_so_far}, x_label="trial"))
    charts.append(bar_chart("parameter importance (fANOVA)", importances(study)))
    ranked = sorted(done, key=lambda r: float(r["value"]), reverse=not minimize)
    axes = list(dict.fromkeys(k for r in ranked for k in r["params"])) + [metric]
    charts.append(parallel_chart("parallel coordinates (best trial highlighted)", axes,
                                 [(r["run"], {**r["params"], metric: r["value"]}) for r in ranked]))
    views = [read_run_view(folder / r["run"]) for r in rows if (folder / r["run"] / "metrics.jsonl").is_file()]
    body = (f'<p>{len(rows)} trials; {len(done)} finished, '
            f'{sum(r["state"] == "pruned" for r in rows)} pruned, {sum(r["state"] == "skipped" for r in rows)} '
            f'skipped, {sum(r["state"] == "fail" for r in rows)} failed; {"lower" if minimize else "higher"} '
            f'{html.escape(metric)} is better.</p>'
            f'{_table(rows, metric)}<h2>Search</h2><div class="charts">{"".join(c for c in charts if c)}</div>'
            f'<h2>Every trial\'s curves</h2>{render_overlay(views) if views else ""}')
    path = folder / REPORT_FILE
    atomic_write_text(path, page(f"tunesmith tune: {folder.name}", body))
    return path


def _table(rows: list[dict[str, Any]], metric: str) -> str:
    head = "<tr><th>trial</th><th>state</th><th>" + html.escape(metric) + "</th><th>parameters</th><th></th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(r['run'])}</td><td>{html.escape(r['state'])}</td>"
        f"<td>{_value(r['value'])}</td>"
        f"<td>{html.escape(params_text(r['params']))}</td>"
        f"<td>{html.escape(r['note'])}</td></tr>"
        for r in rows)
    return f"<table>{head}{body}</table>"


def _value(value: Any) -> str:
    return "" if value is None else f"{value:.5g}"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def print_trials(study: Any, metric: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("trial", "state", metric, "parameters", "note", title=f"study {study.study_name}")
    best = best_trial(study)
    for r in trial_rows(study):
        mark = " ★" if best is not None and r["number"] == best.number else ""
        table.add_row(r["run"] + mark, r["state"], _value(r["value"]),
                      params_text(r["params"]), r["note"])
    Console().print(table)
