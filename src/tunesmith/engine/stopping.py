"""Preemption: a scheduler's SIGTERM (or Ctrl-C) ends a run with a complete checkpoint, not a lost one.

The first SIGTERM / SIGINT only sets a flag; the loop sees it at the next step boundary, writes a
checkpoint there and stops (`RunInterrupted`). If the boundary does not come within `grace_s` (a long
evaluation, data preparation), or a second signal arrives, the run stops at once; checkpoints are written
atomically, so the last complete one is never damaged either way. Only the main thread can set handlers;
elsewhere (a notebook thread, a test worker) nothing is installed.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class RunInterrupted(KeyboardInterrupt):
    """The run stopped on a signal after saving a checkpoint at `step`."""

    def __init__(self, signal_name: str, step: int) -> None:
        super().__init__(f"{signal_name}: stopped at step {step} after saving its checkpoint")
        self.signal_name, self.step = signal_name, step


class StoppedAtOnce(KeyboardInterrupt):
    """A second signal, or the grace period over: stopped without a new checkpoint."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(f"{signal_name}: stopped at once, without a new checkpoint")
        self.signal_name = signal_name


class StopSignal:
    def __init__(self, grace_s: float | None) -> None:
        self.grace_s = grace_s
        self.requested: str | None = None  # the signal's name once one arrived

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested is not None:  # the second signal: stop now
            raise StoppedAtOnce(self.requested)
        self.requested = signal.Signals(signum).name
        if self.grace_s:
            signal.signal(signal.SIGALRM, self._expired)
            signal.alarm(max(1, math.ceil(self.grace_s)))

    def _expired(self, signum: int, frame: Any) -> None:
        raise StoppedAtOnce(self.requested or "signal")

    def at_boundary(self) -> None:
        """The step boundary is reached: the save that follows must not be cut by the grace alarm."""
        signal.alarm(0)

    def stop_now(self, step: int) -> RunInterrupted:
        return RunInterrupted(self.requested or "signal", step)

    @contextmanager
    def installed(self) -> Iterator[StopSignal]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGALRM] = signal.getsignal(signal.SIGALRM)
        try:
            yield self
        finally:
            if self.requested is not None:
                signal.alarm(0)  # only our own alarm: a caller's is left alone
            for sig, handler in previous.items():
                signal.signal(sig, handler)
