"""A training run's entry in the run registry. The registry is an index, so a damaged or locked registry
file costs the run its row (said once, in one line), never the training itself."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.config import RunConfig, dump_config
from tunesmith.data.sources import source_paths
from tunesmith.errors import UserError
from tunesmith.runs.folder import RunFolder
from tunesmith.runs.registry import Heartbeat, RunRegistry, fingerprint_paths, hash_text


def run_identity(cfg: RunConfig) -> dict[str, str]:
    """What identifies a run's setup: the config's hash (any run name) and the data files' fingerprint."""
    without_output = cfg.model_copy(update={"output": type(cfg.output)()})  # same setup, any run name
    named = source_paths(cfg.data.train, cfg.data) + source_paths(cfg.data.eval, cfg.data)
    paths = [p for p in named if p.exists()]
    return {"config_hash": hash_text(dump_config(without_output)), "data_fingerprint": fingerprint_paths(paths)}


@dataclass
class RegistryEntry:
    registry: RunRegistry | None
    run_id: int | None
    say: Any  # where a registry problem is reported (the run's console and log)

    @classmethod
    def absent(cls, say: Any) -> RegistryEntry:
        """No row: a rank other than 0 of a multi-process run (rank 0 keeps the run's one row)."""
        return cls(None, None, say)

    @classmethod
    def open(cls, cfg: RunConfig, run: RunFolder, resume: bool, reporter: Any) -> RegistryEntry:
        registry = RunRegistry(Path(cfg.output.dir))
        entry = cls(registry, None, reporter.say)
        identity = run_identity(cfg)
        entry.run_id = entry._guard(
            lambda: registry.start(
                run.path,
                run.path.name,
                config_hash=identity["config_hash"],
                data_fingerprint=identity["data_fingerprint"],
                model=cfg.model.path,
                method=cfg.method.name,
                task=cfg.task.name,
                resume=resume,
            )
        )
        return entry

    def heartbeat(self) -> Any:
        if self.registry is None or self.run_id is None:
            return nullcontext()
        return Heartbeat(self.registry, self.run_id)

    def finish(self, status: str, metrics: dict[str, Any] | None = None, note: str | None = None) -> None:
        registry, run_id = self.registry, self.run_id
        if registry is not None and run_id is not None:
            self._guard(lambda: registry.finish(run_id, status, metrics, note))

    def _guard(self, action: Any) -> Any:
        try:
            return action()
        except UserError as exc:
            self.say(f"warning: {exc.message}; the run goes on without its registry row")
            self.run_id = None
            return None
