"""The `tunesmith` command: subcommands → library functions.

A UserError prints one line (`error: ...`) and exits 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tunesmith.errors import UserError

app = typer.Typer(
    help="Fine-tune pretrained language models on your own data.\n\nExample: tunesmith train examples/demo/config.yaml",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect configs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
data_app = typer.Typer(help="Check and clean data sets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
runs_app = typer.Typer(help="List and show the runs of the run registry.", invoke_without_command=True)
app.add_typer(runs_app, name="runs")
DEBUG = {"on": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks for errors")] = False,
    allow_imports: Annotated[
        bool, typer.Option("--allow-imports", help="let a run folder's config import the modules it names")
    ] = False,
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="let a run's model run the code shipped with it")
    ] = False,
    allow_pickle_weights: Annotated[
        bool, typer.Option("--allow-pickle-weights", help="let a run load the pickle weights its config allows")
    ] = False,
) -> None:
    from tunesmith.runs.tuned import TRUST

    DEBUG["on"] = debug
    TRUST.allow_imports, TRUST.trust_remote_code = allow_imports, trust_remote_code
    TRUST.allow_pickle_weights = allow_pickle_weights


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="run config (YAML)")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="dotted overrides, e.g. train.lr=1e-4")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue from the newest complete checkpoint")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing run folder")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress output")] = False,
    resume_from: Annotated[
        Path | None, typer.Option("--resume-from", help="resume from this checkpoint folder (checkpoints/step-N)")
    ] = None,
    force_resume: Annotated[
        bool, typer.Option("--force-resume", help="resume although training settings or data files changed")
    ] = False,
    nproc: Annotated[
        int, typer.Option("--nproc", help="train in N processes on this machine (DDP; gloo on CPU, one per GPU)")
    ] = 1,
) -> None:
    """Fine-tune a model as CONFIG says.

    Example: tunesmith train examples/demo/config.yaml train.max_steps=10 output.name=try1
    """
    from tunesmith.engine.distributed import is_main, launched
    from tunesmith.pipeline import train as run_train

    if nproc != 1 and not launched():  # this process becomes the launcher of NPROC ranks
        from tunesmith.config import load_config
        from tunesmith.launch import check_nproc, launch
        from tunesmith.training import check_job

        check_nproc(nproc)  # what is wrong with the command or the config: one line, before any process starts
        job = load_config(config, overrides or [])
        check_job(job, nproc)

        flags = [flag for flag, on in (("--resume", resume), ("--overwrite", overwrite), ("--quiet", quiet),
                                       ("--force-resume", force_resume)) if on]
        flags += ["--resume-from", str(resume_from)] if resume_from is not None else []
        code = launch(nproc, [*_root_flags(), "train", str(config), *(overrides or []), *flags],
                      job.train.stop_grace_s)
        raise SystemExit(code)

    try:
        result = run_train(config, overrides or [], resume=resume, overwrite=overwrite, quiet=quiet,
                           resume_from=resume_from, force_resume=force_resume)
    except KeyboardInterrupt as exc:  # typer would swallow it into a bare status 130
        _interrupted(exc)
    main = is_main()  # rank 0 speaks for a job of several processes
    if main:
        typer.echo(f"run folder: {result.run_dir}")
    failed = [g["message"] for g in result.summary.get("gates", []) if not g["passed"]]
    if failed:  # a finished run below its quality gates: automation must not take it for a success
        if main:
            typer.echo(f"failed gate: {'; '.join(failed)}", err=True)
        raise SystemExit(3)


def _root_flags() -> list[str]:
    """The root options this process was given, for the processes it launches."""
    from tunesmith.runs.tuned import TRUST

    chosen = (("--debug", DEBUG["on"]), ("--allow-imports", TRUST.allow_imports),
              ("--trust-remote-code", TRUST.trust_remote_code), ("--allow-pickle-weights", TRUST.allow_pickle_weights))
    return [flag for flag, on in chosen if on]


@config_app.command("show")
def config_show(
    config: Annotated[Path, typer.Argument(help="run config (YAML)")],
    overrides: Annotated[list[str] | None, typer.Argument(help="dotted overrides")] = None,
) -> None:
    """Print the fully resolved config, defaults included.

    Example: tunesmith config show examples/demo/config.yaml method.r=8
    """
    from tunesmith.config import dump_config, load_config

    typer.echo(dump_config(load_config(config, overrides or [])), nl=False)


@config_app.command("docs")
def config_docs(
    out: Annotated[Path | None, typer.Option("--out", help="write the page here (e.g. docs/config.md)")] = None,
) -> None:
    """Print the config reference (every key, type, default and help, per method and task), generated from
    the schema and the registries, plugins included.

    Example: tunesmith config docs --out docs/config.md
    """
    from tunesmith.config_docs import config_reference
    from tunesmith.files import atomic_write_text

    page = config_reference()
    if out is None:
        typer.echo(page, nl=False)
    else:
        atomic_write_text(out, page)
        typer.echo(f"wrote {out}")


@app.command()
def estimate(
    config: Annotated[Path, typer.Argument(help="run config (YAML)")],
    overrides: Annotated[list[str] | None, typer.Argument(help="dotted overrides")] = None,
    device: Annotated[
        str, typer.Option("--device", help="cpu (this machine), cuda, or a GPU: t4, l4, a100-80, h100, ...")
    ] = "cpu",
    memory_gb: Annotated[float | None, typer.Option("--memory-gb", help="memory to plan for instead of the device's")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the estimate as JSON here")] = None,
    nproc: Annotated[
        int, typer.Option("--nproc", min=1, help="processes of the job (memory per process, as distributed.strategy shares it)")
    ] = 1,
) -> None:
    """What a run will cost before it runs: parameters, peak memory by part, time, whether it fits, the
    largest micro-batch that fits, and the cheapest changes that would fit. Reads the model's config and the
    data, never the weights; measures a one- and two-block probe of the run's step (seconds).

    Example: tunesmith estimate examples/demo/config.yaml --device t4; with --nproc 8 and
    distributed.strategy=fsdp, what each of 8 GPUs needs.
    """
    from tunesmith.estimate.estimator import estimate_config
    from tunesmith.estimate.report import print_estimate
    from tunesmith.files import atomic_write_json

    found = estimate_config(config, overrides or [], device, memory_gb, processes=nproc)
    print_estimate(found)
    if json_out is not None:
        atomic_write_json(json_out, found.to_json())


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="a run folder (runs/NAME)")],
    out: Annotated[Path, typer.Option("--out", help="folder (hf, adapter) or FILE.gguf to write")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="hf (merged folder), adapter (peft folder) or gguf")
    ] = None,
    quant: Annotated[
        str | None, typer.Option("--quant", help="gguf: f16 (default), bf16 or q8_0")
    ] = None,
    merge: Annotated[bool, typer.Option("--merge", help="fold the adapter into the base weights (hf)")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an earlier tunesmith export")] = False,
) -> None:
    """Write the run's model for the tool that will run it, verified before it is reported done: it is
    loaded back (transformers, peft, llama.cpp) and must answer probe prompts as the trained model does.
    Beside the artifact: export.json (the agreement) and a model card README.md; gguf adds an Ollama Modelfile.

    Example: tunesmith export runs/demo --format gguf --quant f16 --out demo.gguf
    """
    from tunesmith.export.exporter import export_run

    _quiet()
    # no --format: the original command (--merge folds the method in, else base + method files)
    merged = merge if fmt is None else merge or fmt == "hf"
    typer.echo(export_run(run_dir, out, fmt or "hf", quant, overwrite, merged).note)


Temperature = Annotated[float, typer.Option("--temperature", help="sampling temperature; 0: greedy")]
TopP = Annotated[float, typer.Option("--top-p", help="nucleus sampling: keep this share of probability")]
TopK = Annotated[int, typer.Option("--top-k", help="sample among the k likeliest tokens; 0: off")]
MaxNewTokens = Annotated[int, typer.Option("--max-new-tokens", help="longest answer, in tokens")]
RepetitionPenalty = Annotated[float, typer.Option("--repetition-penalty", help="1.0: off")]
Seed = Annotated[int | None, typer.Option("--seed", help="seed of the sampling (reproducible answers)")]


def _sampling(temperature: float, top_p: float, top_k: int, max_new_tokens: int, repetition_penalty: float,
              seed: int | None) -> Any:
    from tunesmith.inference.sampling import Sampling

    return Sampling(temperature, top_p, top_k, repetition_penalty, max_new_tokens, seed)


def _adapters(specs: list[str] | None) -> dict[str, str]:
    adapters: dict[str, str] = {}
    for spec in specs or []:
        name, sep, run = spec.partition("=")
        if not sep or not name or not run:
            raise UserError(f"--adapter {spec!r}: write NAME=RUN_FOLDER")
        if name in adapters:
            raise UserError(f"--adapter {name} given twice")
        adapters[name] = run
    return adapters


@app.command()
def serve(
    target: Annotated[str, typer.Argument(help="run folder, exported folder, model folder, .gguf or alias")],
    adapter: Annotated[
        list[str] | None, typer.Option("--adapter", help="NAME=RUN: another run on the same base, served as NAME")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="address to bind (non-loopback needs --api-key)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    api_key: Annotated[str | None, typer.Option("--api-key", help="required Bearer key")] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", help="requests answered together")] = 8,
    max_queue: Annotated[int, typer.Option("--max-queue", help="queued jobs before 503")] = 64,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="largest max_tokens a request may ask")] = 2048,
) -> None:
    """An OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/models, /health) until killed.

    Example: tunesmith serve runs/demo --adapter tone=runs/tone --port 8000
    """
    from tunesmith.serve.server import LOOPBACK, Limits, serve_forever
    from tunesmith.serve.target import load_served

    if host not in LOOPBACK and not api_key:
        raise UserError(f"--host {host} is reachable from other machines: pass --api-key KEY (or bind 127.0.0.1)")
    _quiet()
    loaded = load_served(target, _adapters(adapter))
    limits = Limits(max_tokens=max_tokens, max_batch=max_batch, max_queue=max_queue)
    serve_forever(loaded, host, port, api_key, limits)


@app.command()
def tune(
    config: Annotated[str, typer.Argument(help="run config (YAML); or `show` to show a study")],
    study_dir: Annotated[Path | None, typer.Argument(help="with `show`: the study's folder (output.dir/<study>)")] = None,
    space: Annotated[Path | None, typer.Option("--space", help="search space: dotted keys -> distributions (YAML)")] = None,
    trials: Annotated[int | None, typer.Option("--trials", help="trials in total (over every process on the study)")] = None,
    budget_minutes: Annotated[float | None, typer.Option("--budget-minutes", help="start no trial after this long")] = None,
    jobs: Annotated[int, typer.Option("--jobs", help="trials at once on this machine (when memory allows)")] = 1,
    storage: Annotated[str | None, typer.Option("--storage", help="Optuna RDB URL (default: SQLite in the study folder)")] = None,
    study: Annotated[str | None, typer.Option("--study", help="study name (default: output.name)")] = None,
    metric: Annotated[str, typer.Option("--metric", help="eval_loss, or a task metric: macro_f1, rougeL")] = "eval_loss",
    direction: Annotated[str | None, typer.Option("--direction", help="minimize or maximize (default: from the metric)")] = None,
    sampler: Annotated[str, typer.Option("--sampler", help="tpe, random, grid or cmaes")] = "tpe",
    pruner: Annotated[str, typer.Option("--pruner", help="median, halving, hyperband or none")] = "median",
    seed: Annotated[int, typer.Option("--seed", help="the sampler's seed")] = 0,
    device: Annotated[str, typer.Option("--device", help="what the estimator checks trials against")] = "cpu",
    memory_gb: Annotated[float | None, typer.Option("--memory-gb", help="memory to plan trials for")] = None,
) -> None:
    """Search hyper-parameters within a budget: each trial is a normal run (output.dir/<study>/trial-K);
    writes best.yaml (ready to train) and report.html there. `tunesmith tune show STUDY_DIR` shows a study.

    Example: tunesmith tune examples/demo/config.yaml --space space.yaml --trials 8
    """
    from tunesmith.tune.command import build_search, show
    from tunesmith.tune.command import tune as run_tune

    if config == "show":
        if study_dir is None and storage is None:
            raise UserError("tunesmith tune show STUDY_DIR (or --storage URL --study NAME)")
        show(study_dir or Path("."), storage, study)
        return
    if space is None:
        raise UserError("--space SPACE.yaml: which keys to search, and over what")
    _quiet()
    search = build_search(Path(config), space, trials=trials, minutes=budget_minutes, metric=metric,
                          direction=direction, sampler=sampler, pruner=pruner, storage=storage, study=study,
                          seed=seed, device=device, memory_gb=memory_gb)
    run_tune(search, jobs)


@app.command()
def ui(
    host: Annotated[str, typer.Option("--host", help="address to bind (non-loopback needs a token)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 7860,
    runs: Annotated[Path, typer.Option("--runs", help="output root: the run folders and registry.sqlite")] = Path("runs"),
    data: Annotated[
        Path | None, typer.Option("--data", help="folder whose data files the studio may offer (besides uploads)")
    ] = None,
    models: Annotated[
        list[Path] | None, typer.Option("--models", help="folder local models may be loaded from (repeatable)")
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="required on every request (generated when binding beyond loopback)")
    ] = None,
) -> None:
    """The web studio: runs and live curves, new runs from the schema's form with their estimate, data
    checks, a base-vs-tuned playground and preference labelling, served until killed.

    Example: tunesmith ui --runs runs --port 7860   (then open http://127.0.0.1:7860/)
    """
    from tunesmith.runs.tuned import TRUST
    from tunesmith.ui.app import Studio, serve_studio
    from tunesmith.ui.form import Trust
    from tunesmith.ui.security import Guard, needs_token, new_token
    from tunesmith.ui.workspace import Workspace

    if token is None and needs_token(host):
        token = new_token()
    _quiet()
    trust = Trust(TRUST.trust_remote_code, TRUST.allow_imports, TRUST.allow_pickle_weights)
    serve_studio(Studio(Workspace(runs, data, models or []), Guard(host, port, token), trust))


@app.command()
def chat(
    target: Annotated[str, typer.Argument(help="run folder, exported folder, model folder, .gguf or alias")],
    system: Annotated[str | None, typer.Option("--system", help="system prompt (default: the run's)")] = None,
    temperature: Temperature = 0.0,
    top_p: TopP = 1.0,
    top_k: TopK = 0,
    max_new_tokens: MaxNewTokens = 256,
    repetition_penalty: RepetitionPenalty = 1.0,
    seed: Seed = None,
) -> None:
    """Talk to a model in the terminal; answers stream as they are generated. /help lists the commands
    (/reset, /system, /base, /tuned, /compare, /save FILE, /quit). Reads standard input, so it can be scripted.

    Example: tunesmith chat runs/demo --temperature 0.7
    """
    from tunesmith.serve.chat import ChatSession, load_lines, run_chat
    from tunesmith.serve.target import load_served

    sampling = _sampling(temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed)
    _quiet()
    loaded = load_served(target)
    if loaded.config.sequence_head:
        raise UserError(f"{target} is a {loaded.config.task.name} run (a scoring head): use tunesmith generate")
    run_chat(ChatSession(loaded, sampling, system or loaded.system_prompt), load_lines(sys.stdin))


@app.command()
def generate(
    target: Annotated[str, typer.Argument(help="run folder, exported folder, model folder, .gguf or alias")],
    data: Annotated[Path, typer.Option("--data", help="records with a prompt or messages (JSONL, CSV, ...)")],
    out: Annotated[Path, typer.Option("--out", help="JSONL to write; a rerun continues it")],
    n: Annotated[int, typer.Option("--n", min=1, help="samples per prompt")] = 1,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    temperature: Temperature = 0.0,
    top_p: TopP = 1.0,
    top_k: TopK = 0,
    max_new_tokens: MaxNewTokens = 256,
    repetition_penalty: RepetitionPenalty = 1.0,
    seed: Seed = None,
) -> None:
    """Answer every record of a file in batches; each output line is the input plus response,
    finish_reason and token counts (classification runs: label and probabilities). Resumable.

    Example: tunesmith generate runs/demo --data prompts.jsonl --out answers.jsonl
    """
    from tunesmith.serve.batch import generate_file
    from tunesmith.serve.target import load_served

    sampling = _sampling(temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed)
    _quiet()
    loaded = load_served(target)
    with _GenerateProgress() as progress:
        stats = generate_file(loaded, data, out, sampling, n, batch_size, progress)
    skipped = f", {stats.skipped} already there" if stats.skipped else ""
    typer.echo(
        f"{stats.written} records written to {out}{skipped}; {stats.completion_tokens} tokens in "
        f"{stats.seconds:.1f} s ({stats.tokens_per_second:.1f} tokens/s)"
    )


class _GenerateProgress:
    """A rich progress bar with ETA and live tokens/s, shown on standard error."""

    def __enter__(self) -> _GenerateProgress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            "generating", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), TextColumn("{task.fields[rate]}"),
            console=Console(stderr=True), transient=True,
        )
        self.bar.__enter__()
        self.task = self.bar.add_task("generate", total=None, rate="")
        return self

    def start(self, total: int) -> None:
        import time

        self.started = time.perf_counter()
        self.bar.update(self.task, total=total)

    def advance(self, count: int, tokens: int) -> None:
        import time

        rate = tokens / max(time.perf_counter() - self.started, 1e-9)
        self.bar.update(self.task, advance=count, rate=f"{rate:.1f} tok/s")

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)


@app.command("eval")
def eval_command(
    targets: Annotated[list[str], typer.Argument(help="run folders and/or models (path, .gguf, alias)")],
    data: Annotated[
        Path | None, typer.Option("--data", help="a data file in any format tunesmith reads")
    ] = None,
    task: Annotated[
        str | None, typer.Option("--task", help="task of plain models (runs know theirs)")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the metrics to this JSON file")
    ] = None,
    bias: Annotated[
        bool, typer.Option("--bias", help="counterfactual bias probe: base vs tuned gap per group")
    ] = False,
    bias_pairs: Annotated[
        Path | None, typer.Option("--bias-pairs", help="your own pairs (default: shipped set)")
    ] = None,
    lm_eval: Annotated[
        str | None, typer.Option("--lm-eval", help="lm-evaluation-harness tasks, comma-separated")
    ] = None,
    lm_eval_include: Annotated[
        Path | None, typer.Option("--lm-eval-include", help="folder of your own harness task YAMLs (offline)")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="--lm-eval: examples per task at most")] = None,
) -> None:
    """Task metrics (and eval loss) of runs and models on one data file; runs of one method share one base.
    With --bias: whether fine-tuning widened the log-likelihood gap between counterfactual sentences.

    Example: tunesmith eval runs/sentiment --data examples/sentiment/eval.jsonl --json metrics.json
    """
    from tunesmith.evaluate.table import print_metrics
    from tunesmith.runs.evaluation import evaluate_targets

    _quiet()
    if lm_eval is not None:
        from tunesmith.runs.harness import harness_report

        scores = harness_report(targets, [t for t in lm_eval.split(",") if t], lm_eval_include, limit)
        for name, per_task in scores.items():
            for task_name, metrics in per_task.items():
                shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
                typer.echo(f"{name} · {task_name}: {shown}")
        if json_out is not None:
            _write_json(json_out, {"lm_eval": scores})
        if data is None and not bias:
            return
    if bias:
        from tunesmith.runs.evaluation import bias_report

        report = bias_report(targets, bias_pairs)
        for name, result in report.items():
            typer.echo(f"{name}: widened groups: {', '.join(result['widened_groups']) or 'none'}")
            for group, gap in result["tuned"].items():
                typer.echo(f"  {group}: gap {result['base'][group]:.3f} (base) → {gap:.3f} (tuned)")
        if json_out is not None and lm_eval is None:
            _write_json(json_out, {"bias": report})
        if data is None:
            return
    if data is None:
        raise UserError("--data FILE is required (or --bias / --lm-eval on their own)")
    results = evaluate_targets(targets, data, task)
    print_metrics(results)
    if json_out is not None:
        # one target: its metrics at the top level; several: keyed by target name
        payload = next(iter(results.values())) if len(results) == 1 else {"results": results}
        _write_json(json_out, payload)


@app.command()
def compare(
    base: Annotated[str, typer.Argument(help="the base model (or a run) to compare against")],
    run: Annotated[str, typer.Argument(help="the tuned run folder")],
    data: Annotated[Path, typer.Option("--data", help="a data file in any format tunesmith reads")],
    task: Annotated[str | None, typer.Option("--task", help="task, when neither argument is a run")] = None,
    examples: Annotated[int, typer.Option("--examples", help="examples shown where the two differ most")] = 3,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write both results to this JSON file")
    ] = None,
) -> None:
    """Base vs tuned on one data file: metrics side by side, then the examples where they differ most.

    Example: tunesmith compare smollm2-135m-instruct runs/legal_summarization --data examples/legal_summarization/eval.jsonl
    """
    from tunesmith.evaluate.table import differing_examples, print_examples, print_metrics
    from tunesmith.runs.evaluation import evaluate_targets

    _quiet()
    results = evaluate_targets([base, run], data, task)
    print_metrics(results)
    (base_name, base_result), (run_name, run_result) = results.items()
    shown = differing_examples(base_result, run_result, examples)
    print_examples(shown, base_name, run_name)
    if json_out is not None:
        _write_json(json_out, {"base": base_result, "tuned": run_result, "differing_examples": shown})


@app.command()
def feedback(
    prompts: Annotated[
        Path, typer.Option("--prompts", help="records with prompts (any format tunesmith reads)")
    ],
    out: Annotated[Path, typer.Option("--out", help="preference JSONL to append to (dpo / reward read it)")],
    models: Annotated[list[str], typer.Option("--model", help="a run or model; give two to compare A vs B")],
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 96,
    temperature: Annotated[
        float, typer.Option("--temperature", help="sampling, when one model answers twice")
    ] = 0.8,
    limit: Annotated[int | None, typer.Option("--limit", help="ask about at most this many prompts")] = None,
) -> None:
    """Show a prompt and two answers; record which one you prefer (or both bad) for DPO and reward models.

    Example: tunesmith feedback --prompts prompts.jsonl --model smollm2-135m-instruct --model runs/dpo --out prefs.jsonl
    """
    from tunesmith.feedback.collect import collect, model_answerer, read_prompt_texts, unpaired_path

    if not 1 <= len(models) <= 2:
        raise UserError(f"--model: give one model (two samples) or two (A vs B), not {len(models)}")
    _quiet()
    texts = read_prompt_texts(prompts)[:limit]
    counts = collect(texts, model_answerer(models, max_new_tokens, temperature), out)
    typer.echo(
        f"{counts.pairs} preference pair(s) appended to {out}; {counts.both_bad} both-bad pair(s) to "
        f"{unpaired_path(out)}; {counts.skipped} skipped"
    )


@data_app.command("check")
def data_check(
    data: Annotated[Path, typer.Argument(help="the training data file")],
    eval_file: Annotated[
        Path | None, typer.Option("--eval", help="held-out data, checked for leakage")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="a run config: its tokenizer, template, format")
    ] = None,
    fix: Annotated[
        Path | None, typer.Option("--fix", help="write a cleaned copy here (+ .removed.jsonl log)")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="report as JSON (default: DATA-check.json here)")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="report as HTML (default: DATA-check.html here)")
    ] = None,
    threshold: Annotated[
        float, typer.Option("--near-threshold", help="Jaccard similarity of near-duplicates")
    ] = 0.8,
    language: Annotated[
        str | None, typer.Option("--language", help="expected language (ISO 639-1, e.g. en)")
    ] = None,
) -> None:
    """Find what is wrong with a data set before training: structure, duplicates, leakage, lengths and
    template, personal data, language mix, bias signals. Exit 0 when the check ran, 2 on unreadable input.

    Example: tunesmith data check examples/demo/train.jsonl --eval examples/demo/eval.jsonl --config examples/demo/config.yaml
    """
    from tunesmith.data.quality.checks import CheckOptions, record_format, run_checks
    from tunesmith.data.quality.fix import write_fixed
    from tunesmith.data.quality.html import render_html
    from tunesmith.files import atomic_write_text

    _quiet()
    cfg, tokenizer = None, None
    if config is not None:
        from tunesmith.config import load_config
        from tunesmith.models.load import load_tokenizer, resolve_model

        cfg = load_config(config)
        tokenizer = load_tokenizer(resolve_model(cfg.model), cfg.model)
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "checking", BarColumn(), DownloadColumn(), TimeRemainingColumn(), transient=True
    ) as progress:  # a missing or unreadable file is reported by the reader, in its own words
        task = progress.add_task("check", total=data.stat().st_size if data.is_file() else None)
        report = run_checks(
            data,
            eval_file,
            cfg,
            tokenizer,
            CheckOptions(near_threshold=threshold, language=language),
            lambda n: progress.advance(task, n),
        )
    print_findings(report)
    stem = data.stem
    _write_json(json_out or Path(f"{stem}-check.json"), report.to_json())
    atomic_write_text(html_out or Path(f"{stem}-check.html"), render_html(report, f"data check: {data}"))
    if fix is not None:
        kept, removed = write_fixed(data, report, fix, *record_format(cfg))
        typer.echo(
            f"cleaned copy: {fix} ({kept} records kept, {removed} removed; "
            f"reasons in {fix.with_suffix('.removed.jsonl')})"
        )


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="one run folder, or several to overlay")],
    out: Annotated[
        Path | None, typer.Option("--out", help="where to write (default RUN/report.html, or ./report.html)")
    ] = None,
) -> None:
    """Write a self-contained HTML report (charts, no network) of one run, or one overlaying several.

    Example: tunesmith report runs/demo   |   tunesmith report runs/a runs/b --out ab.html
    """
    from tunesmith.runs.report import write_report

    path, notes = write_report(runs, out)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"report: {path}")


RootOption = Annotated[Path, typer.Option("--root", help="output root holding registry.sqlite (output.dir)")]


@runs_app.callback()
def runs_list(
    ctx: typer.Context,
    root: RootOption = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="print the runs as JSON")] = False,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="add rows for run folders the registry does not know")
    ] = False,
) -> None:
    """List the runs under the output root: id, name, status, method, model, times, final eval loss.

    Example: tunesmith runs --json
    """
    if ctx.invoked_subcommand is not None:
        return
    from tunesmith.runs.listing import print_runs
    from tunesmith.runs.registry import RunRegistry

    registry = RunRegistry(root)
    if rebuild:
        typer.echo(f"added {registry.rebuild(root)} runs from the folders under {root}")
    print_runs(registry.list(), as_json)


@runs_app.command("show")
def runs_show(
    key: Annotated[str, typer.Argument(help="run id or name")],
    root: RootOption = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="print the run as JSON")] = False,
) -> None:
    """Everything the registry knows of one run, with its summary's headline numbers.

    Example: tunesmith runs show 3
    """
    from tunesmith.runs.listing import print_run
    from tunesmith.runs.registry import RunRegistry

    print_run(RunRegistry(root).get(key), as_json)


def print_findings(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("severity", "check", "finding", title=f"data check: {report.records} records")
    for finding in report.findings:
        table.add_row(finding.severity, finding.check, finding.message)
    if not report.findings:
        table.add_row("-", "-", "no findings")
    Console().print(table)


def _quiet() -> None:
    from tunesmith.pipeline import quiet_libraries

    quiet_libraries()


def _write_json(path: Path, payload: Any) -> None:
    from tunesmith.files import atomic_write_json

    atomic_write_json(path, payload)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if argv is None:  # a process of its own (not a call from Python): the allocator can still be chosen
        from tunesmith.allocator import reexec_with_tcmalloc

        reexec_with_tcmalloc(args)
    try:
        code = app(args=args, standalone_mode=False)
    except UserError as exc:
        if DEBUG["on"] or "--debug" in args:
            raise
        from tunesmith.engine.distributed import is_main

        if is_main():  # every rank of a job reads the same inputs: one line, not one per rank
            typer.echo(f"error: {exc.message}", err=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    except Exception as exc:
        usage_errors, aborts = _click_exception_types()
        if isinstance(exc, usage_errors):
            exc.show()  # type: ignore[attr-defined]
            raise SystemExit(2) from None
        if isinstance(exc, aborts):
            if isinstance(exc.__cause__, KeyboardInterrupt):  # click turns Ctrl-C / signals into Abort
                _interrupted(exc.__cause__)
            raise SystemExit(1) from None
        raise
    if isinstance(code, int) and code != 0:  # typer reports Ctrl-C outside `train` as a status
        raise SystemExit(code)


def _click_exception_types() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(usage errors, aborts) of click and of the copy of click that newer typer carries inside itself (its
    Abort is typer.Abort)."""
    import click

    usage: list[type[Exception]] = [click.exceptions.ClickException]
    aborts: list[type[Exception]] = [click.exceptions.Abort, typer.Abort]
    try:
        from typer._click import exceptions as vendored  # no public name for the vendored classes
    except ImportError:
        pass
    else:
        usage.append(vendored.ClickException)
    return tuple(usage), tuple(aborts)


def _interrupted(exc: KeyboardInterrupt) -> None:
    """Exit status 128 + the signal's number, as shells report it (SIGTERM 143, SIGINT 130)."""
    from tunesmith.engine.distributed import is_main
    from tunesmith.engine.stopping import RunInterrupted, StoppedAtOnce

    if not is_main():  # rank 0 says it for the job
        raise SystemExit(143 if getattr(exc, "signal_name", "") == "SIGTERM" else 130) from None
    if isinstance(exc, RunInterrupted):
        typer.echo(f"interrupted by {exc}; continue with --resume", err=True)
        raise SystemExit(143 if exc.signal_name == "SIGTERM" else 130) from None
    name = exc.signal_name if isinstance(exc, StoppedAtOnce) else "SIGINT"
    typer.echo(
        f"interrupted by {name}: stopped at once; --resume continues from the newest complete checkpoint, if "
        "the run had written one", err=True,
    )
    raise SystemExit(143 if name == "SIGTERM" else 130) from None
