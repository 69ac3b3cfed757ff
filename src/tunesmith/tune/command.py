"""`tunesmith tune` and `tunesmith tune show`: read and check the request, run the search in this process
or in J processes sharing the study, then write best.yaml and report.html and print the trials."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import yaml

from tunesmith.errors import UserError
from tunesmith.tune.report import REPORT_FILE, best_trial, print_trials, write_best, write_report
from tunesmith.tune.search import PRUNERS, SAMPLERS, STUDY_FILE, Search, open_study, run_search
from tunesmith.tune.space import check_space, read_space


def build_search(config: Path, space: Path, **options: Any) -> Search:
    if not config.is_file():
        raise UserError(f"config file {config} does not exist")
    raw = yaml.safe_load(config.read_text()) or {}
    if not isinstance(raw, dict):
        raise UserError(f"{config}: the config must be a mapping of sections")
    search = Search(raw, config.resolve().parent, read_space(space), **options)
    if search.sampler not in SAMPLERS:
        raise UserError(f"--sampler {search.sampler}: give one of {', '.join(SAMPLERS)}")
    if search.pruner not in PRUNERS:
        raise UserError(f"--pruner {search.pruner}: give one of {', '.join(PRUNERS)}")
    if search.direction not in (None, "minimize", "maximize"):
        raise UserError(f"--direction {search.direction}: give minimize or maximize")
    if search.trials is None and search.minutes is None and search.sampler != "grid":
        raise UserError("give a budget: --trials N and/or --budget-minutes M")
    if search.trials is not None and search.trials < 1 or search.minutes is not None and search.minutes <= 0:
        raise UserError("--trials and --budget-minutes must be positive")
    check_space(search.space, raw, search.base_dir)
    return search


def tune(search: Search, jobs: int = 1) -> Any:
    jobs = _affordable_jobs(search, jobs)
    if jobs == 1:
        run_search(search)
    else:  # J processes on one study: Optuna's storage and the search's lock share the trials out
        context = multiprocessing.get_context("spawn")
        workers = [context.Process(target=run_search, args=(search,)) for _ in range(jobs)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if any(w.exitcode for w in workers):
            raise UserError(f"{sum(bool(w.exitcode) for w in workers)} of {jobs} search processes failed; "
                            f"`tunesmith tune show {search.folder}` shows the trials so far")
    return finish(search.folder, open_study(search), search.metric, str(search.base.output.dir))


def finish(folder: Path, study: Any, metric: str, output_dir: str) -> Any:
    study.set_user_attr("metric", metric)
    print_trials(study, metric)
    best = best_trial(study)
    best_file = write_best(folder, study, output_dir)
    report = write_report(folder, study, metric)
    if best is not None:
        print(f"best: trial-{best.number}, {metric} {best.value:.5g}, {best.params}", flush=True)
    print(f"best config: {best_file or '(no finished trial yet)'}\nreport: {report}", flush=True)
    return study


def show(folder: Path, storage: str | None = None, study_name: str | None = None) -> Any:
    """The trials of a study (its folder, or --storage and --study), best.yaml and report.html again."""
    import optuna

    if storage is None and not (folder / STUDY_FILE).is_file():
        raise UserError(f"{folder}: no {STUDY_FILE} here; give the study's folder (output.dir/<study>), or "
                        "--storage URL --study NAME")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage or f"sqlite:///{(folder / STUDY_FILE).resolve()}"
    try:
        study = optuna.load_study(study_name=study_name or folder.name, storage=url)
    except KeyError:
        raise UserError(f"no study named {study_name or folder.name!r} in {url}") from None
    metric = str(study.user_attrs.get("metric", "eval_loss"))
    output_dir = str(folder.parent)
    return finish(folder, study, metric, output_dir)


def _affordable_jobs(search: Search, jobs: int) -> int:
    """J processes only when the estimator says J trials fit in memory together; fewer otherwise (said)."""
    if jobs <= 1:
        return 1
    from tunesmith.estimate.devices import find_device
    from tunesmith.estimate.estimator import estimate_run

    try:
        found = estimate_run(search.base, find_device(search.device, search.memory_gb), suggest=False)
    except UserError:
        return jobs
    fit = max(1, int(found.memory_mb // max(found.peak_memory_mb, 1.0)))
    if fit < jobs:
        print(f"--jobs {jobs}: a trial needs about {found.peak_memory_mb:,.0f} MB of {found.memory_mb:,.0f} MB; "
              f"running {fit} at a time", flush=True)
    return min(jobs, fit)


__all__ = ["REPORT_FILE", "build_search", "show", "tune"]
