"""Training started from the studio: each run is `tunesmith train` in its own worker process, so the
server never blocks on training and a crash of one run takes nothing else with it. The run folder and
the registry say how it goes; this module only starts, stops (SIGTERM: the loop saves a checkpoint at
the next step boundary and the run ends `interrupted`) and resumes (`--resume`) them."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from tunesmith.errors import UserError


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stopping: bool = False  # SIGTERM sent: a second one would stop at once, without the checkpoint

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class Jobs:
    def __init__(self, logs: Path, root_flags: list[str]) -> None:
        self.logs = logs
        self.root_flags = root_flags  # the trust flags the studio was started with, passed on
        self.workers: dict[str, Worker] = {}
        self.lock = threading.Lock()

    def start(self, name: str, config: Path, resume: bool = False, overrides: list[str] | None = None) -> Worker:
        with self.lock:
            if self.running(name):
                raise UserError(f"run {name} is already training")
            log = self.logs / f"{name.replace('/', '__')}.log"
            command = [sys.executable, "-m", "tunesmith", *self.root_flags, "train", str(config), *(overrides or []),
                       "--quiet", *(["--resume"] if resume else [])]
            with open(log, "ab") as out:  # the worker's own output (the run also writes train.log)
                process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           start_new_session=True)
            worker = self.workers[name] = Worker(name, process, log)
            return worker

    def running(self, name: str) -> bool:
        worker = self.workers.get(name)
        return worker is not None and worker.alive

    def stopping(self, name: str) -> bool:
        worker = self.workers.get(name)
        return worker is not None and worker.alive and worker.stopping

    def stop(self, name: str) -> None:
        """One SIGTERM: the run checkpoints at its next step boundary. Asking again changes nothing."""
        with self.lock:
            worker = self.workers.get(name)
            if worker is None or not worker.alive:
                raise UserError(f"run {name} is not training in this studio")
            if not worker.stopping:
                worker.stopping = True
                worker.process.send_signal(signal.SIGTERM)

    def exit_code(self, name: str) -> int | None:
        worker = self.workers.get(name)
        return None if worker is None else worker.process.poll()

    def last_lines(self, name: str, count: int = 20) -> list[str]:
        worker = self.workers.get(name)
        if worker is None or not worker.log.is_file():
            return []
        return worker.log.read_text(errors="replace").splitlines()[-count:]

    def stop_all(self, grace_s: float = 30.0) -> None:
        """At shutdown: every run this studio started stops cleanly (a checkpoint), none is orphaned."""
        alive = [w for w in self.workers.values() if w.alive]
        for worker in alive:
            if not worker.stopping:
                worker.stopping = True
                worker.process.send_signal(signal.SIGTERM)
        for worker in alive:
            try:
                worker.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                worker.process.kill()
