"""The studio on loopback for the UI tests: a real uvicorn server in a thread, and Debian's Chromium."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.runs.test_report import CHROMIUM, FLAGS
from tunesmith.ui.app import Studio, build_app
from tunesmith.ui.form import Trust
from tunesmith.ui.security import Guard
from tunesmith.ui.workspace import Workspace

ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots of every page, to look at


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_studio(runs: Path, data: Path, token: str | None = None, trust: Trust | None = None,
                   host: str = "127.0.0.1", models: list[Path] | None = None) -> Iterator[tuple[str, Studio]]:
    import uvicorn

    port = free_port()
    studio = Studio(Workspace(runs, data, models or []), Guard(host, port, token), trust or Trust())
    server = uvicorn.Server(uvicorn.Config(build_app(studio), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline, "the studio did not start"
        time.sleep(0.05)
    try:
        yield url, studio
    finally:
        studio.jobs.stop_all()
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is needed for the UI tests: `make dev` installs it (apt chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def csrf_of(client: httpx.Client, url: str) -> str:
    import re

    found = re.search(r'name="csrf-token" content="([^"]+)"', client.get(f"{url}/").text)
    assert found, "the page carries no CSRF token"
    return found.group(1)
