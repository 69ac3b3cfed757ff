"""The Data page: upload a data file (size-limited, stored under the studio's uploads with a sanitised,
never-reused name), run `data check` on it, read the report, and save a cleaned copy (duplicates and
unreadable records removed, as `data check --fix` does) beside the uploads."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from tunesmith.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from tunesmith.ui.security import MAX_UPLOAD_BYTES, child_path, free_path, json_object, read_body, upload_name


def add_routes(app: FastAPI, studio: Any) -> None:
    ws = studio.workspace

    @app.get("/data", response_class=HTMLResponse)
    async def data_page(request: Request) -> Response:
        files = [{"name": ws.shown(p), "kb": round(p.stat().st_size / 1024, 1),
                  "when": time.strftime("%Y-%m-%d %H:%M", time.localtime(p.stat().st_mtime)),
                  "report": _report_name(p) if (ws.checks / f"{_report_name(p)}.html").is_file() else None}
                 for p in ws.data_files()]
        return studio.page(request, "data.html", files=files, limit_mb=MAX_UPLOAD_BYTES // 2**20,
                           data_dir=str(ws.data) if ws.data is not None else "")

    @app.put("/api/upload")
    async def upload(request: Request) -> dict[str, Any]:
        name = upload_name(request.query_params.get("name", ""))
        body = await read_body(request, MAX_UPLOAD_BYTES, "upload")
        path = free_path(ws.uploads, name)
        atomic_write_bytes(path, body)
        return {"file": ws.shown(path), "bytes": len(body)}

    @app.post("/api/check")
    async def check(request: Request) -> dict[str, Any]:
        path = ws.data_file(str((await json_object(request)).get("file", "")))
        report = await run_in_threadpool(_check, path)
        name = _report_name(path)
        from tunesmith.data.quality.html import render_html

        atomic_write_json(ws.checks / f"{name}.json", report.to_json())
        atomic_write_text(ws.checks / f"{name}.html", render_html(report, f"data check: {ws.shown(path)}"))
        return {"file": ws.shown(path), "records": report.records, "report": f"/checks/{name}",
                "findings": [{"check": f.check, "severity": f.severity, "message": f.message} for f in report.findings]}

    @app.get("/checks/{name}", response_class=HTMLResponse)
    async def check_report(name: str) -> Response:
        path = child_path(ws.checks, f"{name}.html", "data check report")
        return HTMLResponse(path.read_text(encoding="utf-8"))

    @app.post("/api/fix")
    async def fix(request: Request) -> dict[str, Any]:
        from tunesmith.data.quality.fix import write_fixed

        path = ws.data_file(str((await json_object(request)).get("file", "")))
        report = await run_in_threadpool(_check, path)
        out = free_path(ws.uploads, f"{path.stem}-clean.jsonl")
        kept, removed = await run_in_threadpool(write_fixed, path, report, out)
        return {"file": ws.shown(out), "kept": kept, "removed": removed,
                "log": ws.shown(out.with_suffix(".removed.jsonl"))}


def _check(path: Path) -> Any:
    from tunesmith.data.quality.checks import CheckOptions, run_checks

    return run_checks(path, None, None, None, CheckOptions())


def _report_name(path: Path) -> str:
    """The report's file name: the data file's stem and a hash of its full path (two folders, one stem)."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    return f"{path.stem[:60]}-{digest}"
