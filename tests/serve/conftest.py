"""Two LoRA runs on the tiny Llama that answer every prompt in their own way ("yes" and "no"), so a
test can tell which adapter answered; and a real `tunesmith serve` process on loopback."""

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

from tests.conftest import write_jsonl
from tunesmith import train

PROMPTS = [
    "Say something.", "What is the weather?", "Tell me a story.", "How are you?", "Name a city.",
    "What time is it?", "Pick a number.", "Describe the sea.",
]
ANSWERS = {"yes": "Yes, certainly.", "no": "No, never."}


def train_tiny_run(root: Path, tiny_llama: Path, name: str, answer: str, steps: int = 40) -> Path:
    data = write_jsonl(root / f"{name}.jsonl", [{"prompt": p, "completion": answer} for p in PROMPTS])
    config = {
        "model": {"path": str(tiny_llama)},
        "data": {"train": str(data), "eval": str(data), "max_length": 64, "checks": "off"},
        "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
        "train": {"max_steps": steps, "batch_size": 4, "lr": 3e-2, "mixed_precision": "no", "warmup_steps": 0},
        "eval": {"num_samples": 0, "memorization": {"samples": 0}, "forgetting": False},
        "output": {"dir": str(root / "runs"), "name": name},
    }
    return train(config, quiet=True).run_dir


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-runs")
    return {name: train_tiny_run(root, tiny_llama, name, answer) for name, answer in ANSWERS.items()}


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
