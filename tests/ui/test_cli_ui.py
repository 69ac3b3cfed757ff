"""`tunesmith ui` as a user starts it: the contract's command line serves until killed and lists the runs
under --runs; binding beyond loopback generates a token and prints the URL that carries it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.ui.conftest import free_port


@contextmanager
def ui_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {**os.environ, "TUNESMITH_ALLOCATOR": "system"}
    process = subprocess.Popen([sys.executable, "-m", "tunesmith", "ui", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the first line says where it serves
        yield process, line
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)


def wait_until_up(url: str) -> httpx.Response:
    deadline = time.time() + 60
    while True:
        try:
            return httpx.get(url)
        except httpx.TransportError:
            assert time.time() < deadline, f"{url} never answered"
            time.sleep(0.2)


@pytest.mark.slow
def test_the_contract_command_serves_the_runs_under_runs(tiny_runs: dict[str, Path]) -> None:
    port = free_port()
    runs = tiny_runs["yes"].parent
    with ui_process("--host", "127.0.0.1", "--port", str(port), "--runs", str(runs)) as (process, line):
        assert f"http://127.0.0.1:{port}/" in line and "token" not in line
        listing = wait_until_up(f"http://127.0.0.1:{port}/")
        assert listing.status_code == 200
        names = set(re.findall(r'<a href="/runs/([^"]+)">', listing.text))
        assert {"yes", "no"} <= names
        run = httpx.get(f"http://127.0.0.1:{port}/runs/yes")
        assert run.status_code == 200 and 'class="chart"' in run.text
        feedback = httpx.get(f"http://127.0.0.1:{port}/feedback")
        assert feedback.status_code == 200
        assert process.poll() is None  # serves until killed


def test_binding_beyond_loopback_requires_a_token(tmp_path: Path) -> None:
    port = free_port()
    with ui_process("--host", "0.0.0.0", "--port", str(port), "--runs", str(tmp_path / "runs")) as (_, line):
        found = re.search(r"\?token=(\S+)", line)
        assert found, line
        assert wait_until_up(f"http://127.0.0.1:{port}/").status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/?token={found.group(1)}").status_code == 200
