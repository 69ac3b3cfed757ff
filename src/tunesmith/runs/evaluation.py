"""`tunesmith eval` and `tunesmith compare`: task metrics of runs and models on one data file.

A target is a run folder (its config, labels and trained result) or a model (path, GGUF, alias),
which is evaluated in the setup of the runs given with it (same task, head and labels) or, alone,
with `--task`. Runs of one method on one base share that base and are switched by name
(`TunedModels`), so comparing several adapters never reloads the base.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from torch import nn

from tunesmith.config import RunConfig, load_config
from tunesmith.data.templates import run_renderer
from tunesmith.engine.precision import autocast_for
from tunesmith.errors import UserError
from tunesmith.evaluate.loss import build_eval_batches, compute_eval_loss
from tunesmith.evaluate.samples import generate_answers, prediction_rows
from tunesmith.methods import base_only
from tunesmith.models.load import load_tokenizer, resolve_model
from tunesmith.modes import perplexity
from tunesmith.runs.tuned import RunModel, TunedModels, load_base, read_run
from tunesmith.tasks import TASKS


@dataclass
class Target:
    name: str
    config: RunConfig
    run: RunModel | None  # None: a plain model


def resolve_targets(texts: list[str], task: str | None) -> list[Target]:
    runs = {text: read_run(text) for text in texts if (Path(text) / "config.yaml").is_file()}
    template = next(iter(runs.values())).config if runs else None
    targets: list[Target] = []
    for text in texts:
        run = runs.get(text)
        if run is not None:
            if task is not None and task != run.config.task.name:
                raise UserError(f"--task {task}: run {text} was trained for task {run.config.task.name}")
            config = run.config
        elif template is not None:  # a base model in the runs' setup
            config = template.model_copy(update={"model": template.model.model_copy(update={"path": text})})
        else:
            config = load_config(
                {"model": {"path": text}, "task": task or "instruction", "data": {"train": "-"}}
            )
        name = Path(text).name if run is not None else text
        if any(t.name == name for t in targets):
            name = text
        targets.append(Target(name, config, run))
    return targets


def evaluate_targets(texts: list[str], data_file: Path, task: str | None = None) -> dict[str, dict[str, Any]]:
    """Metrics of every target on `data_file`, in the order given."""
    if not data_file.is_file():
        raise UserError(f"--data {data_file} does not exist")
    targets = resolve_targets(texts, task)
    labels = next((t.run.labels for t in targets if t.run is not None and t.run.labels), None)
    if labels is None and targets[0].config.task.record_format == "classification":  # plain models: file labels
        from tunesmith.tasks.classification import label_names, read_labeled

        labels = label_names(read_labeled(str(data_file), targets[0].config))
    results: dict[str, dict[str, Any]] = {}
    shared = _shared_runs(targets)
    if shared is not None:
        bank = TunedModels({t.name: t.run.path for t in shared if t.run is not None})
        for target in shared:
            results[target.name] = evaluate_model(
                bank.use(target.name), bank.tokenizer, target.config, data_file, labels,
                reference=partial(_base_of, bank, target.name),
            )  # fmt: skip
    for target in targets:
        if target.name in results:
            continue
        model, tokenizer = load_target(target, labels)
        results[target.name] = evaluate_model(
            model, tokenizer, target.config, data_file, labels, partial(run_base, model, target.run)
        )
    return {t.name: results[t.name] for t in targets}


@contextmanager
def run_base(model: nn.Module, run: RunModel | None) -> Iterator[None]:
    """MODEL as the run's base while inside: adapters off, or, for methods that change the base weights
    themselves (full, freeze), the base's weights loaded in and the trained ones put back after. A plain
    model is its own base."""
    if run is None:
        yield
        return
    if run.method.config.switchable:
        with base_only(model, run.method):
            yield
        return
    trained = {name: value.detach().clone() for name, value in model.state_dict().items()}
    _, base, _ = load_base(run)
    model.load_state_dict(base.state_dict())
    del base
    try:
        yield
    finally:
        model.load_state_dict(trained)


@contextmanager
def _base_of(bank: TunedModels, name: str) -> Iterator[None]:
    bank.use(None)
    try:
        yield
    finally:
        bank.use(name)


def _shared_runs(targets: list[Target]) -> list[Target] | None:
    """Two or more runs of one method (not full) on one base: loaded together on that base."""
    runs = [t for t in targets if t.run is not None]
    if len(runs) < 2 or runs[0].config.method.name == "full":
        return None
    first = runs[0].config
    same = all(
        t.config.method.name == first.method.name and t.config.model.path == first.model.path for t in runs
    )
    return runs if same else None


def load_target(target: Target, labels: list[str] | None = None) -> tuple[nn.Module, Any]:
    """(model with its trained result, tokenizer) of one target, loaded on its own base."""
    if target.run is not None:
        _, base, tokenizer = load_base(target.run)
        return target.run.method.load_trained(base, target.run.final), tokenizer
    source = resolve_model(target.config.model)
    tokenizer = load_tokenizer(source, target.config.model)
    task = TASKS.get(target.config.task.name)
    return task.load_model(source, target.config, labels or [], tokenizer), tokenizer


def evaluate_model(
    model: nn.Module,
    tokenizer: Any,
    config: RunConfig,
    data_file: Path,
    labels: list[str] | None,
    reference: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> dict[str, Any]:
    """eval loss, perplexity and the task's metrics of one loaded model on one file. REFERENCE(): a
    context in which MODEL is its base model (adapters off), for tasks that measure against the base
    (DPO's margins); by default the model itself, whose margins are then 0."""
    cfg = config.model_copy(deep=True)
    cfg.data.eval_split = None
    cfg.data.train = cfg.data.eval = str(data_file)
    cfg.eval.none = False
    task = TASKS.get(cfg.task.name).start()
    renderer = run_renderer(cfg, tokenizer)
    data = task.prepare(cfg, tokenizer, renderer, labels)
    with autocast_for(cfg.train.mixed_precision, next(model.parameters()).device):  # as training measured
        task.before_eval(model, reference, cfg, data)
        objective = task.objective(model, cfg, data)
        loss = compute_eval_loss(objective, build_eval_batches(data.eval, cfg, tokenizer.pad_token_id, task=task))
        metrics = task.metrics(model, tokenizer, renderer, cfg, data)
    outputs = metrics.pop("predictions", None)
    if outputs is None and renderer is not None:  # instruction / causal LM: a few sample answers
        outputs = generate_answers(
            model, renderer, data.eval_records[: cfg.eval.num_samples], cfg.eval.max_new_tokens
        )
    examples = prediction_rows(data.eval_examples(), outputs or [], metrics.pop("correct", None))
    return {"eval_loss": loss, "perplexity": perplexity(loss), **metrics, "examples": examples}


def bias_report(texts: list[str], pairs_file: Path | None) -> dict[str, dict[str, Any]]:
    """For every run: the bias probe's gap per group for its base model and for the tuned model."""
    from tunesmith.evaluate.bias import compare_gaps, group_gaps, load_pairs

    pairs = load_pairs(pairs_file)
    report = {}
    for target in resolve_targets(texts, "instruction"):
        if target.run is None:
            raise UserError(f"--bias compares a run with its base model; {target.name} is not a run folder")
        _, base, tokenizer = load_base(target.run)
        before = group_gaps(base, tokenizer, pairs)
        tuned = target.run.method.load_trained(base, target.run.final)
        report[target.name] = compare_gaps(before, group_gaps(tuned, tokenizer, pairs))
    return report
