"""`tunesmith ui`: the web studio, a FastAPI app with server-rendered pages.

Why this stack: FastAPI and uvicorn already serve `tunesmith serve`, so the playground talks to that very
OpenAI-compatible app in-process (one inference path), and Jinja2 (already installed with transformers)
renders pages whose every value is escaped by default. The charts are the run report's own SVG
(`tunesmith.charts`), redrawn by the server and swapped in by a few lines of script, so no chart library
and no CDN is needed and every asset ships in the package. Gradio was the alternative: it would bring its
own server, a large front-end bundle and a second way to talk to models, for forms we can render from
the config schema ourselves.

Pages: `/` runs, `/runs/<name>` one run (live charts), `/compare` overlaid runs, `/new` a run from the
schema's form, `/data` uploads and data checks, `/playground` base vs tuned answers, `/feedback` labelling.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from tunesmith.errors import UserError
from tunesmith.ui.form import Trust
from tunesmith.ui.jobs import Jobs
from tunesmith.ui.security import CSRF_HEADER, TOKEN_COOKIE, Guard, Refused
from tunesmith.ui.workspace import Workspace

HERE = Path(__file__).parent


@dataclass
class Studio:
    """Everything the pages share."""

    workspace: Workspace
    guard: Guard
    trust: Trust = field(default_factory=Trust)
    jobs: Jobs = field(init=False)
    templates: Jinja2Templates = field(init=False)
    extras: dict[str, Any] = field(default_factory=dict)  # per-page state (playground targets, ...)

    def __post_init__(self) -> None:
        flags = [flag for flag, on in (("--trust-remote-code", self.trust.trust_remote_code),
                                       ("--allow-imports", self.trust.allow_imports),
                                       ("--allow-pickle-weights", self.trust.allow_pickle_weights)) if on]
        self.jobs = Jobs(self.workspace.logs, flags)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))

    def page(self, request: Request, template: str, **context: Any) -> HTMLResponse:
        return self.templates.TemplateResponse(
            request, template, {"csrf": self.guard.csrf, "runs_dir": str(self.workspace.runs), **context})


def build_app(studio: Studio) -> FastAPI:
    from tunesmith.ui import data_pages, feedback_pages, playground, run_pages

    app = FastAPI(title="tunesmith studio", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.studio = studio
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        query_token = request.query_params.get("token")
        try:
            studio.guard.check(request.method, request.url.path, request.headers.get("host", ""),
                               request.cookies.get(TOKEN_COOKIE),
                               query_token, request.headers.get(CSRF_HEADER))
        except Refused as exc:
            return _refusal(request, exc)
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if studio.guard.token is not None and query_token:
            response.set_cookie(TOKEN_COOKIE, studio.guard.token, httponly=True, samesite="strict")
        return response

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return _refusal(request, exc)

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> Response:
        return _refusal(request, Refused(400, str(exc)))

    for module in (run_pages, data_pages, playground, feedback_pages):
        module.add_routes(app, studio)
    return app


def _refusal(request: Request, exc: Refused) -> Response:
    if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    return PlainTextResponse(exc.message, status_code=exc.status)


def serve_studio(studio: Studio) -> None:
    import uvicorn

    app = build_app(studio)
    guard = studio.guard
    url = f"http://{'127.0.0.1' if guard.host in ('0.0.0.0', '::') else guard.host}:{guard.port}/"
    print(f"tunesmith studio on {url}{'?token=' + guard.token if guard.token else ''} (runs: {studio.workspace.runs})",
          flush=True)
    try:
        uvicorn.run(app, host=guard.host, port=guard.port, log_level="warning", timeout_graceful_shutdown=2)
    finally:
        studio.jobs.stop_all()
