"""The models the playground and the feedback page talk to: trained runs under `--runs` and their base
models, each loaded once and answered through the serving code (`serve.target` + `serve.scheduler`, so
the same batching, adapter switching and inference path as `tunesmith serve`; no second one).

A model is chosen by a string: `run:NAME` (the trained run) or `base:NAME` (the model it started from:
its method switched off where it is a removable add-on, else the base loaded on its own).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tunesmith.data.records import Message
from tunesmith.inference.engine import Job
from tunesmith.inference.sampling import Sampling
from tunesmith.runs.folder import RunFolder
from tunesmith.serve.scheduler import Scheduler, Ticket
from tunesmith.serve.server import Pending
from tunesmith.serve.target import LoadedTarget, load_served
from tunesmith.ui.security import Refused
from tunesmith.ui.workspace import Workspace

ANSWER_TIMEOUT_S = 600.0  # a stuck worker must not hold a request forever


class ModelPool:
    def __init__(self, workspace: Workspace, max_batch: int = 4) -> None:
        self.workspace = workspace
        self.max_batch = max_batch
        self.loaded: dict[str, tuple[LoadedTarget, Scheduler]] = {}
        self.loading: dict[str, threading.Lock] = {}
        self.lock = threading.Lock()

    def choices(self) -> list[dict[str, str]]:
        """Every finished run (with final/) and its base, as the pages offer them."""
        found = []
        for row in self.workspace.list_runs():
            if RunFolder(self.workspace.runs / row["name"]).final.is_dir():
                found.append({"id": f"run:{row['name']}", "label": f"{row['name']} ({row['method']})"})
                found.append({"id": f"base:{row['name']}", "label": f"base of {row['name']} ({row['model']})"})
        return found

    def resolve(self, choice: str) -> tuple[LoadedTarget, Scheduler, str]:
        """(target, its scheduler, the model id to ask) for a choice; loads on first use (seconds)."""
        kind, _, name = choice.partition(":")
        if kind not in ("run", "base") or not name:
            raise Refused(400, f"model {choice!r}: give run:NAME or base:NAME")
        path = self.workspace.run_path(name)
        if not RunFolder(path).final.is_dir():
            raise Refused(400, f"run {name} has no trained result yet (final/)")
        target, scheduler = self._load(f"run:{path}", str(path))
        if kind == "run":
            return target, scheduler, target.name
        if target.can_use_base:
            return target, scheduler, target.base_name
        base = target.config.model.path  # full / freeze changed the weights: the base, loaded on its own
        base_target, base_scheduler = self._load(f"model:{base}", base)
        return base_target, base_scheduler, base_target.name

    def _load(self, key: str, text: str) -> tuple[LoadedTarget, Scheduler]:
        """One lock per model: loading one (seconds) never holds up answers from those already loaded."""
        with self.lock:
            if key in self.loaded:
                return self.loaded[key]
            lock = self.loading.setdefault(key, threading.Lock())
        with lock:
            if key not in self.loaded:
                target = load_served(text)
                self.loaded[key] = (target, Scheduler(target, self.max_batch, max_queue=32))
            return self.loaded[key]

    async def stream(self, choice: str, prompt: str, sampling: Sampling, system: str | None = None
                     ) -> AsyncIterator[str]:
        """The answer's text as it is decoded; cancelled when the caller stops iterating."""
        target, scheduler, model_id = await asyncio.to_thread(self.resolve, choice)
        messages = ([Message("system", system)] if system else []) + [Message("user", prompt)]
        job = Job(target.chat_ids(messages), sampling)
        pending = Pending(asyncio.get_running_loop(), [job])
        scheduler.submit([Ticket(model_id, job, pending.done(0))])
        try:
            while True:
                _, text = await pending.events.get()
                if text is None:
                    break
                yield text
            if job.finish_reason == "error":
                raise Refused(500, job.text)
        finally:
            pending.cancel()

    def complete(self, choice: str, prompt: str, sampling: Sampling) -> tuple[str, str]:
        """(answer, the model that wrote it) without streaming; blocks (call it from a worker thread)."""
        target, scheduler, model_id = self.resolve(choice)
        job = Job(target.chat_ids([Message("user", prompt)]), sampling)
        finished = threading.Event()
        scheduler.submit([Ticket(model_id, job, lambda _job: finished.set())])
        if not finished.wait(ANSWER_TIMEOUT_S):
            job.cancel.set()
            raise Refused(504, f"no answer from {choice} within {ANSWER_TIMEOUT_S:.0f} s")
        if job.finish_reason == "error":
            raise Refused(500, job.text)
        return job.text.strip(), _label(choice, target, model_id)


def _label(choice: str, target: LoadedTarget, model_id: str) -> str:
    kind, _, name = choice.partition(":")
    return name if kind == "run" else f"{Path(str(target.config.model.path)).name} (base of {name})"


def pool_of(studio: Any) -> ModelPool:
    pool = studio.extras.get("models")
    if pool is None:
        pool = studio.extras["models"] = ModelPool(studio.workspace)
    return pool
