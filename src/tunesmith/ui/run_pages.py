"""The runs table, one run's page (live curves while it trains), overlays, and the new-run form with its
live cost estimate; runs start, stop and resume through `Jobs` (a `tunesmith train` process each)."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from tunesmith.charts import page as report_page
from tunesmith.errors import UserError
from tunesmith.runs.folder import RunFolder
from tunesmith.runs.report import (
    OVERVIEW_KEYS,
    RunView,
    read_run_view,
    render_overlay,
    render_run,
    run_charts,
)
from tunesmith.ui.form import FormProblems, Places, build_form, check_form
from tunesmith.ui.security import SAFE_SEGMENT, Refused, child_path, json_object
from tunesmith.ui.workspace import summary_status

LIVE = ("starting", "running", "stopping")


def add_routes(app: FastAPI, studio: Any) -> None:
    ws = studio.workspace
    estimates = EstimateCache()

    @app.get("/", response_class=HTMLResponse)
    async def runs(request: Request) -> Response:
        rows = ws.list_runs()
        for row in rows:
            if studio.jobs.running(row["name"]):
                row["status"] = "running"
        return studio.page(request, "runs.html", runs=rows, studies=ws.studies())

    @app.get("/studies/{name}", response_class=HTMLResponse)
    async def study_report(name: str) -> Response:
        """A search's own report.html (written by `tunesmith tune`)."""
        path = child_path(ws.runs, name, "study") / "report.html"
        if not path.is_file():
            raise Refused(404, f"study {name} has no report yet (tunesmith tune show {ws.runs / name})")
        return HTMLResponse(path.read_text(encoding="utf-8"))

    @app.get("/runs/{name:path}", response_class=HTMLResponse)
    async def run_page(request: Request, name: str) -> Response:
        path = ws.run_path(name)
        return studio.page(request, "run.html", name=name, **run_details(studio, name, path))

    @app.get("/api/state/{name:path}")
    async def run_state(name: str) -> dict[str, Any]:
        path = ws.run_path(name)
        view = view_of(path)
        status = run_status(studio, name, path)
        return {"status": status, "steps": len(view.steps), "last_step": view.steps[-1]["step"] if view.steps else None,
                "charts": "".join(run_charts(view)), "can_stop": status in ("starting", "running") and studio.jobs.running(name),
                "can_resume": can_resume(studio, name, path, status), "log": studio.jobs.last_lines(name, 8)}

    @app.get("/report/{name:path}", response_class=HTMLResponse)
    async def report(name: str) -> str:
        view = read_run_view(ws.run_path(name))
        return report_page(f"tunesmith run {view.name}", render_run(view))

    @app.get("/compare", response_class=HTMLResponse)
    async def compare(request: Request) -> Response:
        names = request.query_params.getlist("run")
        if not names:
            raise Refused(400, "choose one or more runs to overlay (?run=A&run=B)")
        views = [read_run_view(ws.run_path(n)) for n in names]
        return studio.page(request, "compare.html", names=names, body=render_overlay(views))

    @app.get("/new", response_class=HTMLResponse)
    async def new_run(request: Request) -> Response:
        files = [ws.shown(p) for p in ws.data_files()]
        return studio.page(request, "new.html", sections=build_form(), data_files=files,
                           trust=studio.trust, suggested=time.strftime("run-%Y%m%d-%H%M%S"))

    @app.post("/api/estimate")
    async def estimate(request: Request) -> Response:
        raw = _config_or_problems(studio, await _values(request))
        if isinstance(raw, Response):
            return raw
        found = await run_in_threadpool(estimates.get, raw)
        return JSONResponse(found)

    @app.post("/api/runs")
    async def start(request: Request) -> Response:
        values = await _values(request)
        raw = _config_or_problems(studio, values)
        if isinstance(raw, Response):
            return raw
        name = raw.get("output", {}).get("name")
        if not isinstance(name, str) or not SAFE_SEGMENT.match(name):
            return _problems({"output.name": ["a plain name: letters, digits, . _ - (it names the run folder)"]})
        if (ws.runs / name).exists():
            return _problems({"output.name": [f"{ws.runs / name} already exists; choose another name"]})
        config = ws.configs / f"{name}.yaml"
        from tunesmith.files import atomic_write_text

        atomic_write_text(config, yaml.safe_dump(raw, sort_keys=False))
        studio.jobs.start(name, config)
        return JSONResponse({"name": name, "url": f"/runs/{name}"}, status_code=201)

    @app.post("/api/stop/{name:path}")
    async def stop(name: str) -> dict[str, Any]:
        ws.run_path(name)
        studio.jobs.stop(name)
        return {"status": "stopping"}

    @app.post("/api/resume/{name:path}")
    async def resume(name: str) -> dict[str, Any]:
        path = ws.run_path(name)
        if not can_resume(studio, name, path, run_status(studio, name, path)):
            raise UserError(f"run {name} has no checkpoint to resume from, or is still training")
        # only a run the studio started: its config was checked by the form (a run folder's own config is
        # data from elsewhere); it resumes where it is now, whatever output.dir said when it started
        studio.jobs.start(name, ws.configs / f"{name}.yaml", resume=True,
                          overrides=[f"output.dir={ws.runs}", f"output.name={name}"])
        return {"status": "starting"}


async def _values(request: Request) -> dict[str, str]:
    values = (await json_object(request)).get("values")
    if not isinstance(values, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
        raise Refused(400, 'send {"values": {"dotted.key": "text", ...}}')
    return values


def _config_or_problems(studio: Any, values: dict[str, str]) -> dict[str, Any] | Response:
    ws = studio.workspace
    places = Places({ws.shown(p): str(p.resolve()) for p in ws.data_files()}, ws.model_roots, ws.runs)
    try:
        return check_form(values, places, studio.trust)
    except FormProblems as exc:
        return _problems(exc.problems)


def _problems(problems: dict[str, list[str]]) -> Response:
    return JSONResponse({"error": "the config has problems", "problems": problems}, status_code=422)


class EstimateCache:
    """`tunesmith estimate` for a form's config, one at a time (a probe measures the machine), cached by
    the config and the size and time of its data files (an edited file is estimated again)."""

    def __init__(self, size: int = 64) -> None:
        self.lock = threading.Lock()
        self.size = size
        self.found: dict[str, dict[str, Any]] = {}

    def get(self, raw: dict[str, Any]) -> dict[str, Any]:
        data = raw.get("data", {})
        stamps = [(str(p), Path(p).stat().st_size, Path(p).stat().st_mtime_ns)
                  for p in (data.get("train"), data.get("eval")) if isinstance(p, str) and Path(p).is_file()]
        key = json.dumps([raw, stamps], sort_keys=True)
        with self.lock:
            if key not in self.found:
                if len(self.found) >= self.size:
                    self.found.pop(next(iter(self.found)))  # the oldest
                self.found[key] = _estimate(raw)
            return self.found[key]


def _estimate(raw: dict[str, Any]) -> dict[str, Any]:
    """For this machine's accelerator when it has one (the workers train there), else its CPU."""
    import torch

    from tunesmith.config import load_config
    from tunesmith.estimate.devices import find_device
    from tunesmith.estimate.estimator import estimate_run

    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        found = estimate_run(load_config(raw), find_device(device, None), suggest=False)
    except UserError as exc:
        return {"error": str(exc)}
    return {"fits": found.fits, "peak_memory_mb": round(found.peak_memory_mb), "memory_mb": round(found.memory_mb),
            "train_s": round(found.train_s, 1), "steps": found.steps, "trainable_params": found.trainable_params,
            "total_params": found.total_params, "max_micro_batch": found.max_micro_batch,
            "breakdown": {k: round(v) for k, v in found.breakdown.items()}, "notes": found.notes}


def run_status(studio: Any, name: str, path: Path) -> str:
    """What the run is doing: the studio's own worker first, then the registry's newest row for this
    folder (a run resumed from a terminal is `running` there while an older summary.json still says
    `interrupted`), then the summary, then how the worker ended."""
    if studio.jobs.running(name):
        if studio.jobs.stopping(name):
            return "stopping"
        return "running" if RunFolder(path).metrics.is_file() else "starting"
    rows = [r for r in studio.workspace.registry_rows() if Path(r["path"]).resolve() == path.resolve()]
    if rows and rows[-1]["status"] == "running":  # stale rows of dead processes are marked interrupted
        return "running"
    summarised = summary_status(path)
    if summarised is not None:
        return summarised
    if rows:
        return str(rows[-1]["status"])
    code = studio.jobs.exit_code(name)
    stopped = (130, 143, -signal.SIGTERM, -signal.SIGINT)  # a stop before its handler was installed: -15
    return "unknown" if code is None else ("interrupted" if code in stopped else "failed")


def can_resume(studio: Any, name: str, path: Path, status: str) -> bool:
    started_here = (studio.workspace.configs / f"{name}.yaml").is_file()
    has_checkpoint = any(RunFolder(path).checkpoints.glob("step-*"))
    return started_here and status not in LIVE and status != "finished" and has_checkpoint


def checkpoints(path: Path) -> list[dict[str, Any]]:
    folder = RunFolder(path).checkpoints
    found = []
    for step in sorted(folder.glob("step-*"), key=lambda p: int(p.name.split("-")[1]) if p.name[5:].isdigit() else 0):
        size = sum(f.stat().st_size for f in step.rglob("*") if f.is_file())
        found.append({"name": step.name, "mb": round(size / 2**20, 1),
                      "when": time.strftime("%H:%M:%S", time.localtime(step.stat().st_mtime))})
    return found


def view_of(path: Path) -> RunView:
    """What the run folder holds so far (nothing yet, for a run the studio has just started)."""
    folder = RunFolder(path)
    return read_run_view(path) if any(p.is_file() for p in (folder.config, folder.metrics, folder.summary)) \
        else RunView(path, {})


def run_details(studio: Any, name: str, path: Path) -> dict[str, Any]:
    view = view_of(path)
    status = run_status(studio, name, path)
    summary = view.summary
    estimate = summary.get("estimate") or {}
    versus = []
    if estimate:
        for label, key, unit in (("peak memory", "peak_memory_mb", "MB"), ("training time", "train_s", "s")):
            predicted, measured = estimate.get(key), summary.get(key)
            if isinstance(predicted, int | float) and isinstance(measured, int | float):
                shown = "{:,.0f} MB" if unit == "MB" else "{:.1f} s"
                versus.append({"what": label, "predicted": shown.format(predicted), "measured": shown.format(measured),
                               "ratio": f"{measured / predicted:.2f}" if predicted else "-"})
    config = RunFolder(path).config
    return {
        "status": status,
        "charts": run_charts(view),
        "overview": [(k, summary[k]) for k in OVERVIEW_KEYS if k in summary and summary[k] is not None],
        "data_stats": [(k, v) for k, v in (summary.get("data") or {}).items() if not isinstance(v, dict | list)],
        "data_findings": summary.get("data_check") or [],
        "versus": versus,
        "config_text": config.read_text(errors="replace") if config.is_file() else "",
        "checkpoints": checkpoints(path),
        "can_stop": status in ("starting", "running") and studio.jobs.running(name),
        "can_resume": can_resume(studio, name, path, status),
        "has_final": RunFolder(path).final.is_dir(),
        "samples": summary.get("samples") or [],
        "log": studio.jobs.last_lines(name) if status == "failed" else [],
    }
