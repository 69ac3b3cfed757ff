"""`tunesmith.train()`: config → data → model → method → loop → run folder.

Everything that can fail because of user input (config, model path, data) is checked before the run
folder is created, so a bad input never leaves anything behind in an existing run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.config import RunConfig, dump_config, load_config
from tunesmith.console import Reporter
from tunesmith.data.batches import BatchPlan
from tunesmith.data.prepare import PreparedData
from tunesmith.data.templates import run_renderer
from tunesmith.engine import distributed, sharding
from tunesmith.engine.callbacks import Callback, Event, LoopState
from tunesmith.engine.checkpoint import (
    clean_stale,
    list_checkpoints,
    load_best_weights,
    load_checkpoint,
    newest_valid_checkpoint,
    verify_checkpoint,
)
from tunesmith.engine.loop import emit, eval_record, peak_memory_mb, run_loop
from tunesmith.engine.memory import is_out_of_memory
from tunesmith.engine.precision import resolve_mixed_precision
from tunesmith.engine.stopping import RunInterrupted, StopSignal
from tunesmith.errors import UserError
from tunesmith.estimate.estimator import estimate_for_run
from tunesmith.evaluate.forgetting import general_samples
from tunesmith.evaluate.gates import check_gates
from tunesmith.evaluate.samples import generate_answers
from tunesmith.files import atomic_write_json, replace_folder, restore_replaced
from tunesmith.methods import METHODS, Method, count_parameters, trainable_state_bytes
from tunesmith.models.load import load_model_config, load_tokenizer, resolve_model
from tunesmith.runs.folder import LABELS_FILE, RunFolder
from tunesmith.runs.record import RegistryEntry
from tunesmith.runs.registry import final_metrics
from tunesmith.runs.report import write_report
from tunesmith.runs.summary import typed_summary
from tunesmith.runs.trackers import TrackerLog, check_trackers, flat_config, prepare_trackers
from tunesmith.tasks import TASKS, Task
from tunesmith.training import TrainingSession, apply_run_settings, build_session, check_job


@dataclass
class TrainResult:
    run_dir: Path
    final_dir: Path
    summary: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)


def quiet_libraries() -> None:
    """tunesmith shows its own progress; transformers' per-load bars and notices are noise here."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


def run_name(cfg: RunConfig) -> str:
    return cfg.output.name or time.strftime("run-%Y%m%d-%H%M%S")


def train(
    config: str | Path | dict[str, Any] | RunConfig,
    overrides: list[str] | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[Callback] = (),
    quiet: bool = False,
    resume_from: str | Path | None = None,
    force_resume: bool = False,
) -> TrainResult:
    """Fine-tune as the config says; returns metrics and paths (see `TrainResult`).

    resume_from: a checkpoint folder to resume from (implies resume); force_resume: resume although
    settings that change the training (or the data) differ from the run's."""
    quiet_libraries()
    cfg = load_config(config, overrides)
    check_job(cfg, distributed.launched_world_size())
    distributed.init_process_group()  # a launched rank joins its job before the checks that ask its rank
    if cfg.output.name is None:
        cfg.output.name = distributed.gather(run_name(cfg))[0]  # rank 0's clock names the one run folder
    run = RunFolder(Path(cfg.output.dir) / cfg.output.name)
    if run.path.resolve().parent != Path(cfg.output.dir).resolve():
        raise UserError(f"output.name {cfg.output.name!r}: the run folder must lie directly inside output.dir")
    resume = resume or resume_from is not None
    run.check_available(resume, overwrite)
    options = ResumeOptions(Path(resume_from) if resume_from else None, force_resume)
    if resume:
        options.notes = check_resume_config(run, cfg, force_resume)
    with StopSignal(cfg.train.stop_grace_s).installed() as stop:
        return _train(cfg, run, resume, overwrite, callbacks, quiet, stop, options)


@dataclass
class ResumeOptions:
    checkpoint: Path | None = None  # --resume-from
    force: bool = False  # --force-resume
    notes: list[str] = field(default_factory=list)  # harmless config changes, said at the start


def _train(
    cfg: RunConfig, run: RunFolder, resume: bool, overwrite: bool, callbacks: Sequence[Callback], quiet: bool,
    stop: StopSignal, options: ResumeOptions,
) -> TrainResult:
    method = METHODS.get(cfg.method.name)
    method.check_environment(cfg)  # e.g. qlora without CUDA: stop before loading anything
    check_trackers(cfg.output.trackers)
    source = resolve_model(cfg.model)
    method.check_model(cfg, load_model_config(source, cfg.model))
    tokenizer = load_tokenizer(source, cfg.model)
    # a classification head reads plain text: no chat template (encoders often have neither it nor EOS)
    renderer = run_renderer(cfg, tokenizer)
    task = TASKS.get(cfg.task.name).start()  # this run's own task object
    data = task.prepare(cfg, tokenizer, renderer)  # the loaders' own errors come first
    if cfg.eval.forgetting and not cfg.eval.none and not cfg.sequence_head:
        data.general = general_samples(cfg, tokenizer)
    check_notes = distributed.gather(run_fast_checks(cfg) if distributed.is_main() else None)[0]  # once per job
    # before the model loads (its probe is small); rank 0's, so every rank checkpoints the same blocks
    estimate = distributed.gather(estimate_for_run(cfg, source, tokenizer, data) if distributed.is_main() else None)[0]
    main = distributed.is_main()  # only rank 0 writes the run folder, the registry and the console
    reporter = Reporter(run, quiet or not main, cfg.train.log_every_steps, writes=main)
    # method settings that do not fit the model fail here, before the run folder exists
    try:
        checkpoint = estimate.get("checkpointed_blocks") if estimate else None
        model = build_model(cfg, method, task, source, data.labels, tokenizer, checkpoint)
    except Exception as exc:
        if is_out_of_memory(exc):
            raise UserError(out_of_memory_advice(cfg)) from None
        raise
    distributed.barrier()  # every rank has checked the folder (check_available) before rank 0 replaces it
    removed = run.create(overwrite and not resume) if main else None
    if main and not resume:
        run.config.write_text(dump_config(cfg))
    if main and data.labels:
        atomic_write_json(run.labels, data.labels)
    distributed.barrier()  # the folder is rank 0's before any rank reads or writes in it
    if removed:
        reporter.say(removed)
    reporter.data_stats(data.stats, data.formats)
    for note in check_notes + options.notes:
        reporter.say(note)
    started = time.perf_counter()
    registry = RegistryEntry.open(cfg, run, resume, reporter) if main else RegistryEntry.absent(reporter.say)
    try:
        with registry.heartbeat():
            summary = _train_prepared(
                cfg, run, method, task, model, tokenizer, renderer, data, reporter, resume, callbacks,
                stop, options,
            )
    except KeyboardInterrupt as exc:
        note = str(exc) if isinstance(exc, RunInterrupted) else "stopped at once (second signal or grace over)"
        if main:
            _write_status(run, "interrupted", started)
        registry.finish("interrupted", note=note)
        raise
    except Exception as exc:
        if main:
            _write_status(run, "failed", started)
        registry.finish("failed", note=f"{type(exc).__name__}: {exc}"[:500])
        if is_out_of_memory(exc):
            raise UserError(out_of_memory_advice(cfg)) from None
        raise
    summary["wall_s"] = time.perf_counter() - started
    summary["registry_id"] = registry.run_id
    summary["data_check"] = check_notes  # the fast checks' findings, for the model card
    summary["estimate"] = estimate  # beside the measurement: peak_memory_mb, train_s
    summary = distributed.gather(typed_summary(summary))[0]  # rank 0's figures and verdicts, on every rank
    if main:
        atomic_write_json(run.summary, summary)
        registry.finish(summary["status"], final_metrics(summary))
        reporter.summary(summary)
        report, _ = write_report([run.path])
        reporter.say(f"report: {report}")
    distributed.barrier()  # a rank's result reads the folder rank 0 has finished
    return TrainResult(run.path, run.final, summary, run.read_metrics())


def out_of_memory_advice(cfg: RunConfig) -> str:
    """One line with the fixes that apply to this config, most effective first."""
    t, d = cfg.train, cfg.data
    fixes = []
    if t.batch_size > 1:
        fixes.append(f"train.batch_size={max(1, t.batch_size // 2)} with train.grad_accum={t.grad_accum * 2} "
                     "(same effective batch)")
    if d.max_length > 256:
        fixes.append(f"data.max_length={d.max_length // 2}")
    if t.gradient_checkpointing is not True:
        fixes.append("train.gradient_checkpointing=true")
    if not t.auto_micro_batch and t.batch_size > 1:
        fixes.append("train.auto_micro_batch=true (halves the micro-batch on OOM, same effective batch)")
    if cfg.method.name == "full":
        fixes.append("method.name=lora (trains a few % of the weights)")
    elif cfg.method.name == "lora":
        fixes.append("method.name=qlora on CUDA (4-bit base)")
    return f"out of memory while training ({cfg.model.path}, method {cfg.method.name}); try " + "; or ".join(fixes)


def run_fast_checks(cfg: RunConfig) -> list[str]:
    """The cheap data checks (structure, labels, duplicates, leakage) on the train and eval files;
    with `data.checks: error` an error-severity finding stops the run before anything is created."""
    if cfg.data.checks == "off":
        return []
    from tunesmith.data.quality.checks import CheckOptions, run_checks
    from tunesmith.data.sources import source_paths

    eval_paths = source_paths(cfg.data.eval, cfg.data)
    notes = []
    for train_path in source_paths(cfg.data.train, cfg.data):
        if not train_path.is_file():
            continue  # folders of .txt and missing files: the data loader reports those
        held = eval_paths[0] if len(eval_paths) == 1 and eval_paths[0].is_file() else None
        report = run_checks(train_path, held, cfg, None, CheckOptions(fast=True))
        if report.errors and cfg.data.checks == "error":
            first = report.errors[0]
            raise UserError(
                f"data check ({train_path}): {first.message}; see `tunesmith data check`, or set data.checks: warn"
            )
        notes += [f"data check ({train_path.name}) {f.severity}: {f.message}" for f in report.findings]
    return notes


def build_model(
    cfg: RunConfig, method: Method, task: Task, source: Any, labels: list[str], tokenizer: Any,
    checkpoint: int | None = None,
) -> Any:
    """The task's model with the method applied (seeded, so method initialisation is reproducible)."""
    from accelerate.utils import set_seed

    set_seed(cfg.train.seed, deterministic=cfg.train.deterministic)
    if cfg.train.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for deterministic GEMMs
    base = task.load_model(source, cfg, labels, tokenizer, **method.load_kwargs(cfg.method))
    return apply_run_settings(base, cfg, method, checkpoint)




# keys a resumed run may change: they do not change what is trained (logging, checkpoint cadence, how
# much is generated when evaluating)
HARMLESS_ON_RESUME = {
    "train.log_every_steps", "train.save_every_steps", "train.save_every_minutes", "train.keep_checkpoints",
    "train.stop_grace_s", "eval.num_samples", "eval.max_new_tokens", "eval.generation_limit", "output.trackers",
}


def check_resume_config(run: RunFolder, cfg: RunConfig, force: bool) -> list[str]:
    """Refuse a resume whose settings differ from the run's (naming the keys), unless forced; harmless
    keys may change and are listed. Returns the notes to show."""
    saved = load_config(run.config).model_dump(mode="json")
    given = cfg.model_dump(mode="json")
    diffs = [
        f"{s}.{k}"
        for s in given
        for k in given[s]
        if isinstance(given[s], dict) and given[s][k] != saved[s].get(k)
    ]
    harmful = [d for d in diffs if d not in HARMLESS_ON_RESUME]
    if harmful and not force:
        raise UserError(
            f"--resume: the config differs from the run's config.yaml at {', '.join(harmful)}; "
            "resume with the same settings, or pass --force-resume"
        )
    return [f"--resume: {', '.join(diffs)} changed{' (forced)' if harmful else ''}"] if diffs else []


def _write_status(run: RunFolder, status: str, started: float) -> None:
    """The status for the post-mortem; on a full disk this can fail too, and must never mask the error
    (nor keep the registry from recording the end)."""
    with suppress(OSError):
        atomic_write_json(run.summary, {"status": status, "wall_s": time.perf_counter() - started})
    with suppress(UserError, OSError):
        write_report([run.path])


def _train_prepared(
    cfg: RunConfig,
    run: RunFolder,
    method: Method,
    task: Task,
    model: Any,
    tokenizer: Any,
    renderer: Any,
    data: PreparedData,
    reporter: Reporter,
    resume: bool,
    callbacks: Sequence[Callback],
    stop: StopSignal,
    options: ResumeOptions,
) -> dict[str, Any]:
    accelerator = build_accelerator(
        resolve_mixed_precision(cfg.train.mixed_precision), cfg.output.trackers, run
    )
    trainable, total = count_parameters(model)
    state_mb = trainable_state_bytes(model) / 2**20
    reporter.parameters(trainable, total, cfg.method.name, state_mb)
    session = build_session(
        cfg, run, method, task, model, tokenizer, renderer, data, accelerator, reporter.say
    )
    if accelerator.num_processes > 1:
        reporter.say(_global_batch_line(session.plan, cfg.distributed.strategy))
    if sharding.is_sharded(model):
        held, whole = sharding.held_bytes(model)
        reporter.say(f"fsdp: this process holds {held / 2**20:.1f} MB of the model's {whole / 2**20:.1f} MB of "
                     "weights, and that share of its gradients and optimizer state")
    before = _load_or_run_before(session, resume)
    state, watchers = session.new_state(), session.watchers
    if resume:
        state, saved, best, session.resumed_from = _restore(run, session, state, reporter.say, options)
        watchers.load_state_dict(saved, best)
    # the overfitting watch first: it adds the generalization gap to the records the others log
    all_callbacks: list[Callback] = [
        watchers.overfitting,
        reporter.callback,
        watchers.early_stopping,
        *callbacks,
    ]
    if cfg.output.trackers:
        settings = prepare_trackers(cfg.output.trackers, run.path)
        accelerator.init_trackers(run.path.name, flat_config(cfg.model_dump(mode="json")), settings)
        all_callbacks.append(TrackerLog(accelerator, cfg.train.log_every_steps))
    if not resume and before.get("eval_loss_before") is not None:
        emit(all_callbacks, Event.EVALUATE, state, eval_record(0, before["eval_loss_before"]))
    reporter.start(state)
    try:
        run_loop(session.loop_parts(all_callbacks, stop), state)
    finally:
        reporter.stop()
    if state.last_saved_step != state.step:  # before the finishing work: a stop there loses no step
        session.checkpoint(state.step)
        state.last_saved_step = state.step
    eval_after = session.evaluate() if session.has_eval_loss else None
    if eval_after is not None:
        emit(all_callbacks, Event.EVALUATE, state, eval_record(state.step, eval_after))
    answers_after = _sample_answers(cfg, data, model, renderer)
    if watchers.restore_best(state.step):  # early stopping: the best step becomes final/
        eval_after = session.evaluate()
    main = distributed.is_main()
    with sharding.gathered(model, trained_only=method.config.switchable, keep=main):  # FSDP: for rank 0's save
        if main:
            _save_final(run, method, model, tokenizer, renderer, data.labels)
    emit(all_callbacks, Event.TRAIN_END, state, {"step": state.step})
    summary = _summary(cfg, run, state, before, eval_after, answers_after, data, trainable, total)
    summary.update(trainable_state_mb=state_mb, **watchers.summary(state))
    _add_verdicts(session, summary, before, eval_after, reporter)
    if cfg.output.trackers:
        accelerator.end_training()  # flush and close the trackers' runs
    return summary


def _global_batch_line(plan: BatchPlan, strategy: str) -> str:
    world = plan.num_processes
    line = (
        f"{world} processes ({strategy}): global batch {plan.batch_size} rows × "
        f"{plan.grad_accum} accumulation × {world} processes = {plan.rows_per_step} rows per step"
    )
    if plan.dropped_per_epoch:
        line += f"; {plan.dropped_per_epoch} rows of each epoch's short last step are left out"
    return line


def _add_verdicts(
    session: TrainingSession,
    summary: dict[str, Any],
    before: dict[str, Any],
    eval_after: float | None,
    reporter: Reporter,
) -> None:
    """Task metrics before/after, the memorization probe, the forgetting watch and the gates."""
    cfg = session.cfg
    summary["eval_before"] = before.get("eval_before")
    summary["eval_after"] = session.task_eval(eval_after, "after")
    with session.accelerator.autocast():
        pad_id = session.tokenizer.pad_token_id
        summary["memorization"] = _memorization(
            cfg, session.task, session.model, session.data, pad_id, reporter
        )
    general_before = before.get("general_perplexity_before")
    summary["forgetting"] = _forgetting(general_before, session.general_ppl(), reporter)
    _apply_gates(cfg, summary, reporter)
    _flat_eval_metrics(summary, session.task.summary_metrics)


def _apply_gates(cfg: RunConfig, summary: dict[str, Any], reporter: Reporter) -> None:
    summary["gates"] = check_gates(cfg.eval.gates, summary)
    for gate in summary["gates"]:
        reporter.say(("gate passed: " if gate["passed"] else "warning: gate failed: ") + gate["message"])
    if not all(gate["passed"] for gate in summary["gates"]):
        summary["status"] = "failed-gate"


def _flat_eval_metrics(summary: dict[str, Any], headline: tuple[str, ...]) -> None:
    """Scalar task metrics also flat: eval_<metric>_before / _after (e.g. eval_pref_accuracy_after), and the
    task's headline metrics (`Task.summary_metrics`) as <metric>_before / _after."""
    for when in ("before", "after"):
        for key, value in (summary[f"eval_{when}"] or {}).items():
            if isinstance(value, float) and key not in ("eval_loss", "perplexity"):
                summary[f"eval_{key}_{when}"] = value
                if key in headline:
                    summary[f"{key}_{when}"] = value


def _forgetting(before: float | None, after: float | None, reporter: Reporter) -> dict[str, Any] | None:
    if before is None or after is None:
        return None
    change = after / before - 1
    reporter.say(f"forgetting watch: general-text perplexity {before:.2f} → {after:.2f} ({change:+.1%})")
    return {"general_perplexity_before": before, "general_perplexity_after": after, "relative_change": change}


def _memorization(
    cfg: RunConfig, task: Task, model: Any, data: PreparedData, pad_id: int, reporter: Reporter
) -> dict[str, Any] | None:
    """The memorization probe on the final weights (training vs held-out answers)."""
    probe = cfg.eval.memorization
    if cfg.eval.none or not task.probes_memorization or probe.samples == 0:
        return None
    from tunesmith.evaluate.memorization import memorization_probe

    result = memorization_probe(
        model,
        data.train,
        data.eval,
        pad_id,
        probe.samples,
        probe.prefix_share,
        probe.max_tokens,
        cfg.train.seed,
    )
    if result is not None:
        reporter.say(("warning: " if result["flagged"] else "") + result["message"])
    return result


def build_accelerator(
    mixed_precision: str, trackers: Sequence[str] = (), run: RunFolder | None = None
) -> Any:
    """An Accelerator for this run.

    accelerate keeps its state in a process-wide singleton that refuses a second run with another
    precision; in a single, non-distributed process (several `train()` calls from Python) the
    precision part of that state is safely reset. Launched multi-process runs are left alone.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, DistributedType, PartialState

    if AcceleratorState._shared_state and PartialState().distributed_type == DistributedType.NO:
        AcceleratorState._reset_state(reset_partial_state=False)
    # the schedule advances once per optimizer step in a run of any world size (every rank runs every step;
    # accelerate's default advances it once per process, for data loaders that split the steps between them)
    options: dict[str, Any] = {"mixed_precision": mixed_precision, "step_scheduler_with_optimizer": False}
    if trackers and run is not None:
        options.update(log_with=list(trackers), project_dir=run.path / "trackers")
    return Accelerator(**options)


def _sample_answers(cfg: RunConfig, data: PreparedData, model: Any, renderer: Any) -> list[str]:
    conversations = data.eval_records[: cfg.eval.num_samples]
    return generate_answers(model, renderer, conversations, cfg.eval.max_new_tokens) if conversations else []


def _load_or_run_before(session: TrainingSession, resume: bool) -> dict[str, Any]:
    """Eval loss, task metrics, general-text perplexity and sample answers of the untrained model;
    computed once, kept for a resumed run."""
    run = session.run
    if resume and run.state.is_file():
        before: dict[str, Any] = json.loads(run.state.read_text())
        return before
    eval_loss = session.evaluate() if session.has_eval_loss else None
    before = {
        "eval_loss_before": eval_loss,
        "eval_before": session.task_eval(eval_loss, "before"),
        "answers_before": _sample_answers(session.cfg, session.data, session.model, session.renderer),
        "general_perplexity_before": session.general_ppl(),
    }
    if distributed.is_main():
        atomic_write_json(run.state, before)
    return before


def _restore(
    run: RunFolder, session: TrainingSession, state: LoopState, say: Any, options: ResumeOptions
) -> tuple[LoopState, dict[str, Any], dict[str, Any], Path]:
    """(state at the chosen checkpoint, the watchers' saved state, early stopping's best weights, that
    checkpoint's path): --resume-from's, else the newest that verifies (newer broken ones named, skipped)."""
    chosen = options.checkpoint
    if chosen is not None and chosen.resolve().parent != run.checkpoints.resolve():
        raise UserError(f"--resume-from {chosen}: not a checkpoint of {run.path}")
    if distributed.is_main():
        _tidy_for_resume(run, options, say)
    distributed.barrier()  # the other ranks choose among what rank 0 left
    path = options.checkpoint or newest_valid_checkpoint(run.checkpoints, say)
    if path is None:
        raise UserError(
            f"--resume: {run.checkpoints} holds no complete checkpoint; start again with --overwrite"
        )
    manifest = verify_checkpoint(path)
    saved_data = manifest.get("data_fingerprint")
    if saved_data and saved_data != session.identity.get("data_fingerprint") and not options.force:
        raise UserError(
            f"--resume: the data files changed since {path.name} was written (fingerprint {saved_data} → "
            f"{session.identity.get('data_fingerprint')}); resume with --force-resume to train on the new data"
        )
    saved_rows = manifest.get("rows_per_step")
    if saved_rows and saved_rows != session.plan.rows_per_step and not options.force:
        raise UserError(
            f"--resume: {path.name} was written by a job of {manifest.get('world_size', 1)} process(es) with "
            f"{saved_rows} rows per step, this one has {session.plan.num_processes} with "
            f"{session.plan.rows_per_step}; keep the global batch (train.batch_size × train.grad_accum × "
            "processes), or pass --force-resume"
        )
    info = load_checkpoint(path, session.unwrapped, session.optimizer, session.scheduler, distributed.rank())
    state.step = info["step"]
    state.load_counters(info.get("loop", {}))
    if state.micro_batch is not None:  # auto_micro_batch backed off before the checkpoint: keep its choice
        factor = session.cfg.train.batch_size // state.micro_batch
        session.plan.batch_size, session.plan.grad_accum = state.micro_batch, session.cfg.train.grad_accum * factor
    session.load_extra_state(info)
    state.last_saved_step = state.step
    if distributed.is_main():
        run.truncate_metrics(state.step)
    say(f"resuming from {path.name} (verified against its manifest)")
    return state, info.get("watchers", {}), load_best_weights(path), path


def _tidy_for_resume(run: RunFolder, options: ResumeOptions, say: Any) -> None:
    """What killed saves left, and --resume-from's abandoned future (rank 0 only)."""
    for note in clean_stale(run.checkpoints):
        say(f"checkpoints: {note}")
    if restored := restore_replaced(run.final):
        say(restored)
    if options.checkpoint is not None:
        chosen = options.checkpoint.resolve()
        for newer in list_checkpoints(run.checkpoints):  # the abandoned future: a later --resume must not pick it
            if newer.resolve() != chosen and int(newer.name.split("-")[1]) > int(chosen.name.split("-")[1]):
                shutil.rmtree(newer)
                say(f"checkpoints: removed {newer.name}, newer than the --resume-from checkpoint")


def _save_final(
    run: RunFolder, method: Any, model: Any, tokenizer: Any, renderer: Any, labels: list[str]
) -> None:
    tmp = run.path / ".tmp-final"
    shutil.rmtree(tmp, ignore_errors=True)
    method.save(model, tmp)
    if labels:
        atomic_write_json(tmp / LABELS_FILE, labels)
    if renderer is not None and renderer.template is not None:  # a fallback template travels with the model
        tokenizer.chat_template = renderer.template
    tokenizer.save_pretrained(tmp)
    replace_folder(tmp, run.final)


def _summary(
    cfg: RunConfig,
    run: RunFolder,
    state: LoopState,
    before: dict[str, Any],
    eval_after: float | None,
    answers_after: list[str],
    data: PreparedData,
    trainable: int,
    total: int,
) -> dict[str, Any]:
    samples = [
        {
            "prompt": conv.prompt_messages()[-1].content,
            "reference": conv.last_answer(),
            "before": b,
            "after": a,
        }
        for conv, b, a in zip(
            data.eval_records, before.get("answers_before", []), answers_after, strict=False
        )
    ]
    seconds = max(state.train_seconds, 1e-9)
    return {
        "status": "finished",
        "run_dir": str(run.path),
        "final_dir": str(run.final),
        "method": cfg.method.name,
        "model": cfg.model.path,
        "eval_loss_before": before.get("eval_loss_before"),
        "eval_loss_after": eval_after,
        "trainable_params": trainable,
        "total_params": total,
        "real_tokens": state.real_tokens,
        "real_tokens_per_s": state.real_tokens / seconds,
        "padded_tokens_per_s": state.padded_tokens / seconds,
        "padding_fraction": 1 - state.real_tokens / max(1, state.padded_tokens),
        "peak_memory_mb": peak_memory_mb(),
        "steps": state.step,
        "train_s": state.train_seconds,
        "data": data.stats,
        "samples": samples,
    }
