"""The search: an Optuna study whose every trial is a normal tunesmith run (`<study>/trial-K`, its own
run folder and registry row), optimising the metric that matters, pruned from its evaluations, with
trials the estimator says do not fit skipped before they start.

Optuna owns sampling (TPE, random, grid, CMA-ES), pruning (median, successive halving, Hyperband) and the
study's storage: SQLite beside the runs by default, so an interrupted search resumes; any Optuna RDB URL
(PostgreSQL, MySQL) lets several machines work on one study. Trials of processes that died are retried
with the same parameters (Optuna's heartbeat and its retry callback).
"""

from __future__ import annotations

import fcntl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.config import RunConfig, load_config
from tunesmith.engine.callbacks import Event, LoopState
from tunesmith.errors import UserError
from tunesmith.tune.space import Dimension, override_text

STUDY_FILE = "study.sqlite"
SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "halving", "hyperband", "none")
LOWER_IS_BETTER = {"eval_loss", "perplexity", "kl"}
HEARTBEAT_S = 30


@dataclass
class Search:
    """What `tunesmith tune` was asked to do."""

    config: dict[str, Any]  # the user's config, as written
    base_dir: Path  # its folder: relative data paths resolve against it
    space: list[Dimension]
    trials: int | None = None  # in total, over every process working on the study
    minutes: float | None = None  # this process stops starting trials after this long
    metric: str = "eval_loss"
    direction: str | None = None  # minimize / maximize (default: from the metric)
    sampler: str = "tpe"
    pruner: str = "median"
    storage: str | None = None
    study: str | None = None  # default: output.name
    seed: int = 0
    device: str = "cpu"
    memory_gb: float | None = None  # what the estimator plans for instead of the device's memory
    quiet: bool = True
    skipped: list[int] = field(default_factory=list)

    @property
    def base(self) -> RunConfig:
        return load_config(self.config, base_dir=self.base_dir)

    @property
    def name(self) -> str:
        return self.study or str(self.base.output.name or "study")

    @property
    def folder(self) -> Path:
        """output.dir/<study>: one run folder per trial, study.sqlite, best.yaml, report.html."""
        return Path(self.base.output.dir) / self.name

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.folder / STUDY_FILE).resolve()}"

    @property
    def minimize(self) -> bool:
        if self.direction is not None:
            return self.direction == "minimize"
        return self.metric in LOWER_IS_BETTER


def open_study(search: Search) -> Any:
    import warnings

    import optuna

    # heartbeats, grouped TPE and stale-trial retries are marked experimental by Optuna; used on purpose
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    search.folder.mkdir(parents=True, exist_ok=True)
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)  # Optuna >= 4.9
    callback = {"heartbeat_stale_trial_callback": retry(max_retry=1)} if retry is not None else \
        {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=1)}
    storage = optuna.storages.RDBStorage(search.storage_url, heartbeat_interval=HEARTBEAT_S,
                                         grace_period=3 * HEARTBEAT_S, **callback)
    return optuna.create_study(storage=storage, study_name=search.name, load_if_exists=True,
                               direction="minimize" if search.minimize else "maximize",
                               sampler=_sampler(search), pruner=_pruner(search))


def _sampler(search: Search, seed: int | None = None) -> Any:
    import optuna

    seed = search.seed if seed is None else seed
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if search.sampler == "grid":
        grid = {}
        for dim in search.space:
            if dim.type != "categorical" and dim.step is None:
                raise UserError(f"--sampler grid: {dim.key} needs a step (or choices) to make a grid")
            if dim.when:
                raise UserError(f"--sampler grid: {dim.key} is conditional; a grid has no conditions")
            grid[dim.key] = list(dim.choices) if dim.type == "categorical" else _steps(dim)
        return optuna.samplers.GridSampler(grid, seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=4)


def _steps(dim: Dimension) -> list[float | int]:
    low, high, step = float(dim.low or 0), float(dim.high or 0), float(dim.step or 1)
    count = int(round((high - low) / step)) + 1
    values = [low + i * step for i in range(count)]
    return [int(v) for v in values] if dim.type == "int" else values


def _pruner(search: Search) -> Any:
    import optuna

    if search.pruner == "none" or search.metric != "eval_loss":
        return optuna.pruners.NopPruner()  # the evaluations during training measure eval loss only
    if search.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)


class ReportToTrial:
    """A training callback: each evaluation's eval loss goes to the trial; when the pruner says the trial
    is hopeless, the run stops at that step (a normal stop: its folder and summary stay)."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial
        self.pruned_at: int | None = None

    def __call__(self, event: Event, state: LoopState, record: dict[str, Any]) -> None:
        if event is not Event.EVALUATE or record.get("eval_loss") is None or state.step == 0:
            return
        self.trial.report(float(record["eval_loss"]), state.step)
        if self.trial.should_prune():
            self.pruned_at = state.step
            state.stop_reason = f"pruned by the search at step {state.step} (eval loss behind the other trials)"


def trial_overrides(search: Search, trial: Any) -> list[str]:
    chosen: dict[str, Any] = {}
    for dim in search.space:
        if dim.active(chosen):
            chosen[dim.key] = dim.suggest(trial)
    return [f"{key}={override_text(value)}" for key, value in chosen.items()]


def objective(search: Search, trial: Any) -> float:
    import optuna

    from tunesmith.pipeline import train

    name = f"trial-{trial.number}"
    overrides = [*trial_overrides(search, trial), f"output.dir={search.folder}", f"output.name={name}"]
    cfg = load_config(search.config, overrides, base_dir=search.base_dir)
    trial.set_user_attr("run", name)
    trial.set_user_attr("overrides", overrides[:-2])
    reason = _does_not_fit(cfg, search.device, search.memory_gb)
    if reason is not None:
        trial.set_user_attr("skipped", reason)
        raise optuna.TrialPruned(reason)
    report = ReportToTrial(trial)
    result = train(cfg, callbacks=[report], quiet=search.quiet, overwrite=False)
    if report.pruned_at is not None:
        trial.set_user_attr("pruned_at_step", report.pruned_at)
        raise optuna.TrialPruned(f"pruned at step {report.pruned_at}")
    value = metric_of(result.summary, search.metric)
    if value is None:
        raise UserError(f"--metric {search.metric}: run {name} has no such metric after training; it has "
                        f"{', '.join(sorted(k for k in result.summary if k.endswith('_after')))}")
    return value


def metric_of(summary: dict[str, Any], metric: str) -> float | None:
    """The final value of METRIC in a run's summary (eval loss: the best evaluation's, as final/ holds)."""
    if metric == "eval_loss":
        value = summary.get("best_eval_loss") or summary.get("eval_loss_after")
    else:
        value = next((summary[k] for k in (f"eval_{metric}_after", f"{metric}_after") if k in summary),
                     (summary.get("eval_after") or {}).get(metric))
    return float(value) if isinstance(value, int | float) else None


def _does_not_fit(cfg: RunConfig, device: str, memory_gb: float | None) -> str | None:
    """Why the estimator says this trial cannot run here (None when it fits, or cannot be estimated)."""
    from tunesmith.estimate.devices import find_device
    from tunesmith.estimate.estimator import estimate_run

    try:
        found = estimate_run(cfg, find_device(device, memory_gb), suggest=False)
    except UserError:
        return None  # a task the estimator does not cover: the trial runs
    if found.fits:
        return None
    return f"does not fit: estimated {found.peak_memory_mb:,.0f} MB of {found.memory_mb:,.0f} MB"


class Turn:
    """One process at a time decides whether another trial starts: the lock is held from counting the
    study's trials until Optuna has created the new one, so processes sharing a study on this machine run
    N trials in total, not N plus one per process. (Across machines the overshoot is at most one trial
    per other process: Optuna's storage has no such lock.)"""

    def __init__(self, folder: Path) -> None:
        self.handle = open(folder / ".tune.lock", "a")  # noqa: SIM115 (held across calls)
        self.held = False

    def take(self) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        self.held = True

    def give(self) -> None:
        if self.held:
            self.held = False
            fcntl.flock(self.handle, fcntl.LOCK_UN)


def run_search(search: Search) -> Any:
    """Start trials until the study holds `trials` finished ones (or `minutes` have passed); returns it.

    Each trial goes through `study.optimize(n_trials=1)`, which keeps the trial's heartbeat: a process
    killed mid-trial leaves a stale trial that the next search marks failed and retries."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(search)
    started, turn = time.monotonic(), Turn(search.folder)

    def run(trial: Any) -> float:
        turn.give()  # the trial exists: the next process may count it
        try:
            return objective(search, trial)
        except (UserError, optuna.TrialPruned):
            raise
        except Exception as exc:  # one trial's crash (a diverged run, say) is recorded; the search goes on
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
            return float("nan")  # Optuna records a NaN objective as a failed trial

    try:
        while search.minutes is None or time.monotonic() - started < search.minutes * 60:
            turn.take()
            optuna.storages.fail_stale_trials(study)
            # finished or running; a failed trial does not count (its retry, or a new one, takes its place),
            # nor does a waiting one (enqueued: the next ask runs it)
            counted = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                  TrialState.RUNNING))
            if search.trials is not None and len(counted) >= search.trials:
                break
            if search.sampler == "grid" and _grid_done(study):
                break
            # seeded by the trial's place in the study, not by the process: reproducible in one process,
            # and two processes sharing the study never draw the same parameters
            study.sampler = _sampler(search, search.seed + len(study.get_trials(deepcopy=False)))
            study.optimize(run, n_trials=1, callbacks=[_say(search, started)])
            turn.give()
    finally:
        turn.give()
        turn.handle.close()
    return study


def params_text(params: dict[str, Any]) -> str:
    """A trial's parameters in one line (floats to 3 significant digits)."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def trial_note(attrs: dict[str, Any]) -> str:
    """Why a trial has no value, from what the search recorded on it (empty for a finished trial)."""
    if "pruned_at_step" in attrs:
        return f"pruned at step {attrs['pruned_at_step']}"
    return str(attrs.get("skipped") or attrs.get("error") or "")


def _say(search: Search, started: float) -> Any:
    """A line per finished trial: the search is long, and its trials are quiet."""

    def say(study: Any, trial: Any) -> None:
        outcome = trial_note(trial.user_attrs) or (
            f"{search.metric} {trial.value:.5g}" if trial.value is not None else trial.state.name.lower())
        finished = len([t for t in study.get_trials(deepcopy=False) if t.state.is_finished()])
        total = f"/{search.trials}" if search.trials else ""
        print(f"[{finished}{total}, {(time.monotonic() - started) / 60:.1f} min] trial-{trial.number}: {outcome} "
              f"({params_text(trial.params)})", flush=True)

    return say


def _grid_done(study: Any) -> bool:
    sampler = study.sampler
    return bool(getattr(sampler, "is_exhausted", lambda _s: False)(study))
