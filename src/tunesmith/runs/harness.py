"""Standard benchmarks through EleutherAI's lm-evaluation-harness (`lm-eval`): tunesmith loads each
target (a run on its base, merged where the method allows; or a plain model) and hands the model object
to the harness's own HF wrapper, so scoring is exactly the harness's. Offline, tasks come from
`--lm-eval-include DIR` (the harness's task YAML, with local data files) or the harness's bundled tasks
whose data is already in the local datasets cache."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from tunesmith.errors import UserError
from tunesmith.runs.evaluation import load_target, resolve_targets


def check_harness() -> None:
    if importlib.util.find_spec("lm_eval") is None:
        raise UserError("--lm-eval needs EleutherAI's harness: pip install 'tunesmith[lm-eval]'")


def task_manager(include: Path | None) -> Any:
    from lm_eval.tasks import TaskManager

    if include is not None and not include.is_dir():
        raise UserError(f"--lm-eval-include {include} is not a folder of task YAML files")
    return TaskManager(include_path=str(include) if include is not None else None)


def harness_report(
    texts: list[str],
    tasks: list[str],
    include: Path | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    num_fewshot: int | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """{target: {task: {metric: value}}} for every target and task."""
    check_harness()
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    manager = task_manager(include)
    unknown = [t for t in tasks if not manager.match_tasks([t])]
    if unknown:
        raise UserError(
            f"--lm-eval: unknown task {', '.join(unknown)}; offline, give your task YAML with --lm-eval-include DIR"
        )
    report: dict[str, dict[str, dict[str, float]]] = {}
    for target in resolve_targets(texts, None):
        model, tokenizer = load_target(target)
        if target.run is not None and target.run.method.mergeable:
            model = target.run.method.merge(model)  # a plain transformers model, as the harness expects
        device = "cuda" if torch.cuda.is_available() else "cpu"
        lm = HFLM(
            pretrained=model.to(device).eval(), tokenizer=tokenizer, batch_size=batch_size, device=device
        )
        results = simple_evaluate(
            model=lm,
            tasks=tasks,
            task_manager=manager,
            limit=limit,
            num_fewshot=num_fewshot,
            log_samples=False,
            bootstrap_iters=0,
        )
        assert results is not None  # only None on non-main processes
        report[target.name] = {
            task: {k.split(",")[0]: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
            for task, metrics in results["results"].items()
        }
    return report
