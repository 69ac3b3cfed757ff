"""A search space: dotted config keys mapped to distributions, read from YAML and checked against the
config schema before any trial runs, so a typo costs one line, not a night of trials.

    train.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
    method.r: {type: int, low: 4, high: 64, step: 4, when: {method.name: lora}}
    method.name: {type: categorical, choices: [lora, dora]}

`when` makes a key conditional: it is sampled only when the named keys (sampled earlier in the file, or
set in the config) have one of the given values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunesmith.config import load_config
from tunesmith.errors import UserError

TYPES = ("float", "int", "categorical")


@dataclass(frozen=True)
class Dimension:
    key: str  # the dotted config key
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def active(self, chosen: dict[str, Any]) -> bool:
        return all(chosen.get(key) in values for key, values in self.when.items())

    def suggest(self, trial: Any) -> Any:
        """The trial's value (Optuna's suggest_* API)."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(self.key, int(self.low or 0), int(self.high or 0), step=int(self.step or 1),
                                     log=self.log)
        return trial.suggest_float(self.key, float(self.low or 0), float(self.high or 0), step=self.step, log=self.log)

    def samples(self) -> list[Any]:
        """Values that must each make a valid config (the ends of a range, every choice)."""
        if self.type == "categorical":
            return list(self.choices)
        low, high = float(self.low or 0), float(self.high or 0)
        return [int(low), int(high)] if self.type == "int" else [low, high]


def read_space(path: Path) -> list[Dimension]:
    if not path.is_file():
        raise UserError(f"--space {path}: no such file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{path}: a search space maps dotted config keys to distributions, e.g. "
                        "train.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}")
    return [_dimension(path, str(key), spec) for key, spec in raw.items()]


def _dimension(path: Path, key: str, spec: Any) -> Dimension:
    where = f"{path}: {key}"
    if not isinstance(spec, dict):
        raise UserError(f"{where}: give a mapping with type (float, int or categorical) and its bounds or choices")
    unknown = set(spec) - {"type", "low", "high", "log", "step", "choices", "when"}
    if unknown:
        raise UserError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} (known: type, low, high, log, step, "
                        "choices, when)")
    kind = spec.get("type")
    if kind not in TYPES:
        raise UserError(f"{where}: type {kind!r}; give one of {', '.join(TYPES)}")
    when = _when(where, spec.get("when"))
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise UserError(f"{where}: categorical needs a non-empty list of choices")
        if len({repr(c) for c in choices}) < len(choices):
            raise UserError(f"{where}: the choices repeat a value")
        return Dimension(key, kind, choices=tuple(choices), when=when)
    step, log = spec.get("step"), bool(spec.get("log", False))
    for name in ("low", "high"):
        value = spec.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise UserError(f"{where}: {name} must be a number (got {value!r})")
    low, high = float(spec["low"]), float(spec["high"])
    if kind == "int" and not (low.is_integer() and high.is_integer()):
        raise UserError(f"{where}: an int range needs whole-number low and high (got {low}, {high})")
    if low > high:
        raise UserError(f"{where}: low {low} > high {high}")
    if log and low <= 0:
        raise UserError(f"{where}: a log scale needs low > 0 (got {low})")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int | float) or step <= 0):
        raise UserError(f"{where}: step must be a positive number (got {step!r})")
    if step is not None and log:
        raise UserError(f"{where}: step and log cannot be combined (Optuna samples a log range continuously)")
    return Dimension(key, kind, low, high, log, None if step is None else float(step), when=when)


def _when(where: str, value: Any) -> dict[str, tuple[Any, ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        raise UserError(f"{where}: when must map config keys to a value or a list of values")
    return {str(k): tuple(v) if isinstance(v, list) else (v,) for k, v in value.items()}


def check_space(space: list[Dimension], config: dict[str, Any], base_dir: Path | None = None) -> None:
    """Every key a trial may set, with every end of its range, makes a config the schema accepts; a
    `when` names a key of the space (or of the config). One line naming the key otherwise."""
    keys = [d.key for d in space]
    if len(set(keys)) < len(keys):
        raise UserError(f"--space: a key appears twice ({', '.join(k for k in keys if keys.count(k) > 1)})")
    for index, dim in enumerate(space):
        for key in dim.when:
            earlier = {d.key for d in space[:index]}
            if key not in earlier:
                raise UserError(f"--space: {dim.key}: when {key}: name a key sampled earlier in the space file")
        conditions = [f"{k}={override_text(v[0])}" for k, v in dim.when.items()]
        for value in dim.samples():
            try:
                load_config(config, [*conditions, f"{dim.key}={override_text(value)}"], base_dir=base_dir)
            except UserError as exc:
                raise UserError(f"--space: {dim.key}={value!r} does not make a valid config: {exc}") from None


def override_text(value: Any) -> str:
    """A value as a dotted override reads it (YAML)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
