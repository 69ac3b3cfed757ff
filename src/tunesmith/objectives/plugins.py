"""Objectives from installed packages (entry-point group `tunesmith.objectives`): each entry names an
`Objective` saying which table it extends (`preference`: a loss of the log-ratio margin h, β and ε, chosen by
`task.loss`; `advantage`: an estimator of (rewards, group_size), chosen by `task.advantage`) and its function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from tunesmith.errors import UserError
from tunesmith.objectives.advantages import ADVANTAGES
from tunesmith.objectives.preference import LOG_RATIO_LOSSES
from tunesmith.registry import plugin_tables

GROUP = "tunesmith.objectives"


@dataclass(frozen=True)
class Objective:
    kind: Literal["preference", "advantage"]
    function: Callable[..., Any]


@cache
def _load_plugins() -> bool:
    """Once, at the first lookup (a plugin module imports this one, so never at import time)."""
    tables: dict[str, dict[str, Any]] = {"preference": LOG_RATIO_LOSSES, "advantage": ADVANTAGES}
    for name, entry in plugin_tables(GROUP):
        table = tables.get(getattr(entry, "kind", ""))
        if table is None or not callable(getattr(entry, "function", None)):
            raise UserError(f"plugin objective {name!r} ({GROUP}): not an Objective(kind='preference'|'advantage', function)")
        if name in table:
            raise UserError(f"plugin objective {name!r} ({GROUP}): a {entry.kind} objective of that name exists already")
        table[name] = entry.function
    return True


def preference_losses() -> dict[str, Callable[..., Any]]:
    """The log-ratio preference losses by name (`task.loss`), plugins included."""
    _load_plugins()
    return LOG_RATIO_LOSSES


def advantage_estimators() -> dict[str, Callable[..., Any]]:
    """The advantage estimators by name (`task.advantage`), plugins included."""
    _load_plugins()
    return ADVANTAGES
