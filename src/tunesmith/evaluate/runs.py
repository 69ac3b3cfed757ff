"""`tunesmith eval RUN [RUN...] --data FILE`: eval loss and perplexity of the base model and of each
run's result on one file. Results of the same method share one loaded base and are switched by name
(`TunedModels`); full fine-tunes are whole models and load one at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.data.prepare import prepare_file
from tunesmith.data.templates import build_renderer
from tunesmith.errors import UserError
from tunesmith.evaluate.loss import build_eval_batches, compute_eval_loss
from tunesmith.models.tuned import TunedModels, load_base, read_run

BASE = "base"


def run_names(paths: list[Path]) -> dict[str, Path]:
    """Short, unique names for the runs: the folder name, with its parent when two collide."""
    names: dict[str, Path] = {}
    for path in paths:
        name = path.name if path.name not in names and path.name != BASE else f"{path.parent.name}/{path.name}"
        if name in names:
            raise UserError(f"run {path} is given twice")
        names[name] = path
    return names


def evaluate_runs(paths: list[Path], data_file: Path, include_base: bool = True) -> dict[str, dict[str, float]]:
    runs = run_names(paths)
    first = read_run(next(iter(runs.values())))
    if not data_file.is_file():
        raise UserError(f"--data {data_file} does not exist")
    tuned = None if first.config.method.name == "full" else TunedModels(runs)
    if tuned is None:
        _, base, tokenizer = load_base(first)
    else:
        base, tokenizer = tuned.model, tuned.tokenizer
    renderer = build_renderer(tokenizer, first.config.data.chat_template)
    samples = prepare_file(str(data_file), first.config, tokenizer, renderer)
    batches = build_eval_batches(samples, first.config, tokenizer.pad_token_id)

    results: dict[str, dict[str, float]] = {}
    if include_base:
        results[BASE] = compute_eval_loss(tuned.use(None) if tuned else base, batches)
    for name, path in runs.items():
        model: Any = tuned.use(name) if tuned else read_run(path).method.load_trained(base, read_run(path).final)
        results[name] = compute_eval_loss(model, batches)
    return results
