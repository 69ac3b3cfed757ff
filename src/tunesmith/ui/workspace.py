"""The studio's folders and what it reads from them: the runs under `--runs` (registry rows, plus run
folders the registry does not know), and the studio's own files in `--runs/.studio/` (uploads, configs
of the runs it started, data-check reports, feedback sessions). The studio writes nowhere else."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunesmith.runs.folder import RunFolder
from tunesmith.runs.listing import duration, when
from tunesmith.runs.registry import REGISTRY_FILE, RunRegistry
from tunesmith.ui.security import DATA_SUFFIXES, child_path

STUDIO = ".studio"
# the task metric the runs table shows, the first a run has (after training)
TASK_METRICS = ("task_score", "macro_f1", "accuracy", "rougeL", "exact_match", "pref_accuracy", "pair_accuracy",
                "mean_reward")


@dataclass
class Workspace:
    runs: Path  # --runs: the output root (output.dir) holding run folders and registry.sqlite
    data: Path | None = None  # --data: where data files may be picked from, besides the uploads
    models: list[Path] = field(default_factory=list)  # --models: folders local models may be loaded from

    def __post_init__(self) -> None:
        self.runs = self.runs.resolve()
        self.data = self.data.resolve() if self.data is not None else None
        self.models = [m.resolve() for m in self.models]
        for folder in (self.uploads, self.configs, self.checks, self.feedback, self.logs):
            folder.mkdir(parents=True, exist_ok=True)

    studio = property(lambda self: self.runs / STUDIO)
    uploads = property(lambda self: self.studio / "data")
    configs = property(lambda self: self.studio / "configs")
    checks = property(lambda self: self.studio / "checks")
    feedback = property(lambda self: self.studio / "feedback")
    logs = property(lambda self: self.studio / "logs")

    @property
    def model_roots(self) -> list[Path]:
        return [*self.models, *([self.data] if self.data is not None else []), self.runs]

    def run_path(self, name: str) -> Path:
        """The folder of a run under --runs, or of one the studio has just started (not yet written)."""
        from tunesmith.ui.security import SAFE_SEGMENT, Refused

        if SAFE_SEGMENT.match(name) and (self.configs / f"{name}.yaml").is_file() and not (self.runs / name).exists():
            return self.runs / name
        path = child_path(self.runs, name)
        if not RunFolder(path).config.is_file() and not RunFolder(path).metrics.is_file():
            raise Refused(404, f"no run named {name!r} under {self.runs}")
        return path

    def run_name(self, path: Path) -> str:
        return path.resolve().relative_to(self.runs).as_posix()

    def list_runs(self) -> list[dict[str, Any]]:
        """Every run under --runs, newest first: the registry's rows, then folders it does not know."""
        rows: dict[Path, dict[str, Any]] = {}
        for row in self.registry_rows():
            path = Path(row["path"]).resolve()
            if path.is_relative_to(self.runs) and path != self.runs:
                rows[path] = row  # the newest row of a reused name wins (list() is oldest first)
        for config in sorted(self.runs.glob("*/config.yaml")) + sorted(self.runs.glob("*/*/config.yaml")):
            path = config.parent.resolve()  # a link that leads outside --runs is not a run of this studio
            if path not in rows and STUDIO not in path.parts and path.is_relative_to(self.runs):
                rows[path] = {"name": path.name, "path": str(path), "status": summary_status(path) or "unknown", "model": None,
                              "method": None, "task": None, "started_at": config.stat().st_mtime,
                              "ended_at": None, "metrics": {}}
        listed = [_row(self, path, row) for path, row in rows.items() if path.is_dir()]
        return sorted(listed, key=lambda r: r["started_at"] or 0, reverse=True)

    def studies(self) -> list[dict[str, Any]]:
        """Hyper-parameter searches under --runs (`tunesmith tune`): a folder with study.sqlite."""
        found = []
        for db in sorted(self.runs.glob("*/study.sqlite")):
            folder = db.parent
            if folder.resolve().is_relative_to(self.runs) and not folder.name.startswith("."):
                found.append({"name": folder.name, "trials": len(list(folder.glob("trial-*"))),
                              "report": (folder / "report.html").is_file(), "best": (folder / "best.yaml").is_file()})
        return found

    def registry_rows(self) -> list[dict[str, Any]]:
        """The registry's rows, oldest first (none before the first run: the studio creates no registry)."""
        return RunRegistry(self.runs).list() if (self.runs / REGISTRY_FILE).is_file() else []

    def data_files(self) -> list[Path]:
        """Data files the studio may read: uploads, feedback sessions' preference files, and files under
        --data (three levels deep)."""
        found = [p for p in sorted(self.uploads.iterdir()) if p.suffix.lower() in DATA_SUFFIXES and p.is_file()
                 and not p.name.endswith(".removed.jsonl")]  # the log of a cleaned copy, not data
        found += sorted(self.feedback.glob("*/preferences*.jsonl"))  # what people chose: data for dpo / reward
        if self.data is not None and self.data != self.runs:
            for depth in ("*", "*/*", "*/*/*"):
                found += [p for p in sorted(self.data.glob(depth))
                          if p.suffix.lower() in DATA_SUFFIXES and p.is_file() and not _hidden(p, self.data)
                          and not p.resolve().is_relative_to(self.runs)]
        return found

    def data_file(self, text: str) -> Path:
        """A data file named by the browser: only one that `data_files` lists."""
        from tunesmith.ui.security import Refused

        wanted = Path(text)
        for path in self.data_files():
            if wanted in (path, path.resolve()) or text == self.shown(path):
                return path
        raise Refused(404, f"no data file {text!r} in the studio's uploads or under {self.data}")

    def shown(self, path: Path) -> str:
        """How a data file is named on the pages: relative to its folder."""
        resolved = path.resolve()
        for folder, label in ((self.uploads, "uploads"), (self.feedback, "feedback")):
            if resolved.is_relative_to(folder.resolve()):
                return f"{label}/{resolved.relative_to(folder.resolve()).as_posix()}"
        if self.data is not None and resolved.is_relative_to(self.data):
            return str(resolved.relative_to(self.data))
        return str(resolved)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def summary_status(path: Path) -> str | None:
    """The status summary.json gives a run (None without one)."""
    summary = RunFolder(path).summary
    if not summary.is_file():
        return None
    try:
        return str(json.loads(summary.read_text()).get("status", "finished"))
    except ValueError:
        return "unknown"


def _row(ws: Workspace, path: Path, row: dict[str, Any]) -> dict[str, Any]:
    """A registry row as the runs table shows it."""
    config = _read_yaml(RunFolder(path).config)
    data: dict[str, Any] = config["data"] if isinstance(config.get("data"), dict) else {}
    train = data.get("train")
    metrics = row.get("metrics") or {}
    best = metrics.get("best_eval_loss", metrics.get("eval_loss_after"))
    metric = next(((name, metrics[key]) for name in TASK_METRICS for key in (f"eval_{name}_after", f"{name}_after")
                   if isinstance(metrics.get(key), int | float)), None)
    model = row.get("model") or (config.get("model") or {}).get("path")
    return {
        "name": ws.run_name(path),
        "status": row.get("status") or "unknown",
        "model": Path(str(model)).name if model else "-",
        "method": row.get("method") or (config.get("method") or {}).get("name") or "-",
        "task": row.get("task") or (config.get("task") or {}).get("name") or "-",
        "data": Path(train).name if isinstance(train, str) else ("mix" if train else "-"),
        "best_eval_loss": best if isinstance(best, int | float) else None,
        "metric": f"{metric[0]} {metric[1]:.3f}" if metric else "-",
        "metric_value": metric[1] if metric else -1e99,
        "duration": duration(row) if row.get("started_at") else "-",
        "seconds": ((row.get("ended_at") or time.time()) - row["started_at"]) if row.get("started_at") else 0,
        "started": when(row.get("started_at")),
        "started_at": row.get("started_at"),
    }


def _read_yaml(path: Path) -> dict[str, Any]:
    """A run's config as data (never validated or imported here: it only labels the table)."""
    try:
        loaded = yaml.safe_load(path.read_text()) if path.is_file() else {}
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
