"""The run registry: one SQLite file under the output root (`runs/registry.sqlite`) with a row per run —
config hash, data fingerprint, model, method, task, tunesmith's git commit, start/end time, status and
final metrics — so `tunesmith runs` can list what was trained without opening every run folder.

SQLite (stdlib) in WAL mode, every write one transaction: a crash mid-write leaves the last committed
state, and readers never block the training process. A background heartbeat (every HEARTBEAT_S) lets the
next listing mark a run whose process died without saying so (SIGKILL, out of memory, power) as
`interrupted`. The registry is an index: run folders stay the source of truth, and `rebuild` re-creates
missing rows from them. A damaged registry file is never rewritten or deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tunesmith.errors import UserError

REGISTRY_FILE = "registry.sqlite"
HEARTBEAT_S = 10.0
LOCK_TIMEOUT_S = 10.0  # how long a write waits for another process's transaction
STALE_AFTER_S = 90.0  # a running row without a heartbeat for this long belongs to a dead process
STATUSES = ("running", "finished", "failed", "interrupted", "failed-gate", "overwritten")
COLUMNS = (
    "id",
    "name",
    "path",
    "status",
    "note",
    "config_hash",
    "data_fingerprint",
    "model",
    "method",
    "task",
    "tunesmith_commit",
    "host",
    "pid",
    "started_at",
    "ended_at",
    "heartbeat_at",
    "metrics",
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    status TEXT NOT NULL,
    note TEXT,
    config_hash TEXT,
    data_fingerprint TEXT,
    model TEXT,
    method TEXT,
    task TEXT,
    tunesmith_commit TEXT,
    host TEXT,
    pid INTEGER,
    started_at REAL,
    ended_at REAL,
    heartbeat_at REAL,
    metrics TEXT
)
"""


class RunRegistry:
    def __init__(self, root: Path) -> None:
        self.path = Path(root) / REGISTRY_FILE

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction; registry problems become one-line UserErrors naming the file."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S)
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"run registry {self.path} cannot be opened ({exc})") from None
        connection.row_factory = sqlite3.Row
        try:
            with connection:  # commit on success, roll back on error
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute(SCHEMA)
                yield connection
        except sqlite3.DatabaseError as exc:
            raise _explain(self.path, exc) from None
        finally:
            connection.close()

    def start(
        self,
        run_path: Path,
        name: str,
        *,
        config_hash: str,
        data_fingerprint: str,
        model: str,
        method: str,
        task: str,
        resume: bool,
    ) -> int:
        """The run's row (a resumed run keeps its row; an overwritten run's old row says so)."""
        now, path = time.time(), str(Path(run_path).resolve())
        with self.connect() as db:
            previous = db.execute(
                "SELECT id FROM runs WHERE path = ? ORDER BY id DESC LIMIT 1", (path,)
            ).fetchone()
            if resume and previous is not None:
                db.execute(
                    "UPDATE runs SET status='running', note=NULL, ended_at=NULL, heartbeat_at=?, host=?, pid=? "
                    "WHERE id=?",
                    (now, socket.gethostname(), os.getpid(), previous["id"]),
                )
                return int(previous["id"])
            if previous is not None:
                db.execute(
                    "UPDATE runs SET status='overwritten', note='its folder was reused by a later run' "
                    "WHERE path = ? AND status != 'running'",
                    (path,),
                )
            cursor = db.execute(
                "INSERT INTO runs (name, path, status, config_hash, data_fingerprint, model, method, task, "
                "tunesmith_commit, host, pid, started_at, heartbeat_at) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    path,
                    config_hash,
                    data_fingerprint,
                    model,
                    method,
                    task,
                    tunesmith_commit(),
                    socket.gethostname(),
                    os.getpid(),
                    now,
                    now,
                ),
            )
            return int(cursor.lastrowid or 0)

    def heartbeat(self, run_id: int) -> None:
        with self.connect() as db:
            db.execute(
                "UPDATE runs SET heartbeat_at=? WHERE id=? AND status='running'", (time.time(), run_id)
            )

    def finish(
        self, run_id: int, status: str, metrics: dict[str, Any] | None = None, note: str | None = None
    ) -> None:
        assert status in STATUSES, status
        with self.connect() as db:
            db.execute(
                "UPDATE runs SET status=?, note=?, ended_at=?, metrics=? WHERE id=?",
                (status, note, time.time(), json.dumps(metrics or {}, default=str), run_id),
            )

    def list(self) -> list[dict[str, Any]]:
        """Every run, oldest first; running rows of dead processes are marked `interrupted` first."""
        with self.connect() as db:
            self._mark_stale(db)
            rows = db.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return [_as_dict(row) for row in rows]

    def get(self, key: str) -> dict[str, Any]:
        """One run by id or by name (the newest of that name)."""
        runs = self.list()
        found = [r for r in runs if str(r["id"]) == key] or [r for r in runs if r["name"] == key]
        if not found:
            known = ", ".join(f"{r['id']} ({r['name']})" for r in runs[-5:]) or "none"
            raise UserError(f"no run {key!r} in {self.path}; recent runs: {known}")
        return found[-1]

    def _mark_stale(self, db: sqlite3.Connection) -> None:
        now, host = time.time(), socket.gethostname()
        for row in db.execute(
            "SELECT id, host, pid, heartbeat_at FROM runs WHERE status='running'"
        ).fetchall():
            gone = row["host"] == host and row["pid"] and not _alive(int(row["pid"]))
            stale = (row["heartbeat_at"] or 0) < now - STALE_AFTER_S
            if gone or stale:
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["heartbeat_at"] or 0))
                db.execute(
                    "UPDATE runs SET status='interrupted', note=?, ended_at=heartbeat_at WHERE id=?",
                    (
                        f"the process stopped without finishing (last heartbeat {since}): killed or crashed",
                        row["id"],
                    ),
                )

    def rebuild(self, root: Path) -> int:
        """Add rows for run folders under ROOT the registry does not know (e.g. after moving it aside)."""
        known = {r["path"] for r in self.list()}
        added = 0
        with self.connect() as db:  # one transaction: all the missing rows, or none
            for config in sorted(Path(root).glob("*/config.yaml")):
                folder = config.parent.resolve()
                if str(folder) in known:
                    continue
                summary = _read_json(folder / "summary.json")
                db.execute(
                    "INSERT INTO runs (name, path, status, note, config_hash, model, method, started_at, ended_at, "
                    "metrics) VALUES (?, ?, ?, 'rebuilt from the run folder', ?, ?, ?, ?, ?, ?)",
                    (
                        folder.name,
                        str(folder),
                        summary.get("status", "interrupted"),
                        hash_text(config.read_text()),
                        summary.get("model"),
                        summary.get("method"),
                        config.stat().st_mtime,
                        (folder / "summary.json").stat().st_mtime if summary else None,
                        json.dumps(final_metrics(summary)),
                    ),
                )
                added += 1
        return added


class Heartbeat:
    """A daemon thread that touches the run's row every HEARTBEAT_S while training runs."""

    def __init__(self, registry: RunRegistry, run_id: int) -> None:
        self.registry, self.run_id = registry, run_id
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="tunesmith-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=HEARTBEAT_S)

    def _beat(self) -> None:
        while not self.stopped.wait(HEARTBEAT_S):
            with suppress(UserError):  # a locked registry: the next beat tries again; the run goes on
                self.registry.heartbeat(self.run_id)


FINAL_METRIC_KEYS = (
    "eval_loss_before",
    "eval_loss_after",
    "best_step",
    "best_eval_loss",
    "stopped_early",
    "steps",
    "wall_s",
    "peak_memory_mb",
    "real_tokens_per_s",
)


def final_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary's headline numbers: fixed keys plus every flat eval_<metric>_before/after."""
    picked = {k: summary[k] for k in FINAL_METRIC_KEYS if k in summary}
    picked.update({k: v for k, v in summary.items() if k.startswith("eval_") and isinstance(v, (int, float))})
    for section in ("forgetting", "memorization"):
        picked.update({k: v for k, v in (summary.get(section) or {}).items() if isinstance(v, (int, float))})
    return picked


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint_paths(paths: list[Path]) -> str:
    """SHA-256 over the bytes of every file (folders: their files in name order)."""
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.name).encode())
            if file.is_file():
                with file.open("rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):  # noqa: B023
                        digest.update(chunk)
    return digest.hexdigest()[:16]


def tunesmith_commit() -> str | None:
    """The git commit of the tunesmith source that runs (None outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _explain(path: Path, exc: sqlite3.DatabaseError) -> UserError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return UserError(
            f"run registry {path} is locked by another process ({text}); try again when it finishes"
        )
    return UserError(
        f"run registry {path} is damaged ({text}); it was left untouched: move it aside and run "
        "`tunesmith runs --rebuild` to re-create it from the run folders"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _as_dict(row: sqlite3.Row) -> dict[str, Any]:
    run = {key: row[key] for key in COLUMNS}
    run["metrics"] = json.loads(run["metrics"]) if run["metrics"] else {}
    return run


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
