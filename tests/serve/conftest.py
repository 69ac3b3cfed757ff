"""A real `tunesmith serve` process on loopback over the two tiny runs (`tiny_runs`, tests/conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    def __init__(self, args: list[str], port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tunesmith", "serve", *args, "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read() if self.proc.stdout else ''}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("server did not start in 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def server(tiny_runs: dict[str, Path]) -> Iterator[ServerProcess]:
    """`tunesmith serve yes --adapter no=...` with a small queue (to test refusals) and an API key."""
    port = free_port()
    process = ServerProcess(
        [str(tiny_runs["yes"]), "--adapter", f"no={tiny_runs['no']}", "--api-key", "sekrit",
         "--max-queue", "16", "--max-batch", "4", "--max-tokens", "64"],
        port,
    )
    yield process
    process.stop()
