"""The server's request queue: one worker thread owns the model and answers queued jobs in batches.

Jobs that ask for the same model id (the same adapter) are batched together, oldest first; the worker
switches the adapter only between batches, so one request's adapter can never leak into another's
answer. Admission is bounded: when `max_queue` jobs are waiting or running, `submit` refuses at once
(the server answers 503) instead of letting clients hang.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tunesmith.inference.engine import Job, run_batch
from tunesmith.serve.target import LoadedTarget


class QueueFull(Exception):
    pass


@dataclass
class Ticket:
    """One job in the queue and the model id it must run on."""

    model_id: str
    job: Job
    on_done: Callable[[Job], None]


class Scheduler:
    def __init__(self, target: LoadedTarget, max_batch: int = 8, max_queue: int = 64) -> None:
        self.target = target
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.pending: deque[Ticket] = deque()
        self.running: list[Ticket] = []
        self.lock = threading.Condition()
        self.batches_run = 0
        self.worker = threading.Thread(target=self._work, name="tunesmith-generate", daemon=True)
        self.worker.start()

    @property
    def in_flight(self) -> int:
        """Jobs queued or still generating (a finished or cancelled row frees its place at once)."""
        with self.lock:
            return len(self.pending) + sum(not t.job.done for t in self.running)

    @property
    def waiting(self) -> int:
        with self.lock:
            return len(self.pending)

    def submit(self, tickets: list[Ticket]) -> None:
        """Queue all of a request's jobs, or none of them."""
        with self.lock:  # a reentrant lock: in_flight takes it again
            busy = self.in_flight
            if busy + len(tickets) > self.max_queue:
                raise QueueFull(f"{busy} jobs are queued or running (limit {self.max_queue})")
            self.pending.extend(tickets)
            self.lock.notify()

    def _next_batch(self) -> list[Ticket]:
        with self.lock:
            while True:
                while not self.pending:
                    self.lock.wait()
                gone = [t for t in self.pending if t.job.cancel.is_set()]  # clients that left while queued
                for ticket in gone:
                    self.pending.remove(ticket)
                    ticket.job.finish_reason = "cancelled"
                    _notify(ticket)
                if not self.pending:
                    continue
                model_id = self.pending[0].model_id
                batch = [t for t in self.pending if t.model_id == model_id][: self.max_batch]
                for ticket in batch:
                    self.pending.remove(ticket)
                self.running = batch
                return batch

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            try:
                model = self.target.use(batch[0].model_id)
                run_batch(model, self.target.tokenizer, [t.job for t in batch], self.target.stop_ids)
            except Exception as exc:  # a failed batch must not kill the worker: its requests get an error
                for ticket in batch:
                    ticket.job.finish_reason = "error"
                    ticket.job.text = f"generation failed: {exc}"
            with self.lock:
                self.batches_run += 1
                self.running = []
            for ticket in batch:
                _notify(ticket)


def _notify(ticket: Ticket) -> None:
    with contextlib.suppress(Exception):  # a request whose event loop is gone must not stop the worker
        ticket.on_done(ticket.job)
