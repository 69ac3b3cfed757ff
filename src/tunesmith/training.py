"""One run's training session: the objects the loop trains with (accelerate-prepared objective, optimizer,
scheduler, batch plan, eval batches, watchers) and the measurements taken on the model (eval loss, task
metrics, general-text perplexity, checkpoints). `pipeline` decides the order; this module only wires."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tunesmith.data.batches import BatchPlan
from tunesmith.data.prepare import PreparedData
from tunesmith.engine import distributed, sharding
from tunesmith.engine.callbacks import Callback, LoopState
from tunesmith.engine.checkpoint import rng_state, save_checkpoint
from tunesmith.engine.compile import compile_forward
from tunesmith.engine.loop import LoopParts
from tunesmith.engine.optim import build_optimizer, build_scheduler
from tunesmith.engine.precision import resolve_mixed_precision
from tunesmith.engine.watchers import Watchers
from tunesmith.evaluate.forgetting import general_perplexity
from tunesmith.evaluate.loss import build_eval_batches, compute_eval_loss
from tunesmith.evaluate.samples import prediction_rows
from tunesmith.files import atomic_write_text
from tunesmith.methods import METHODS, Method
from tunesmith.modes import perplexity
from tunesmith.runs.folder import RunFolder
from tunesmith.runs.record import run_identity
from tunesmith.tasks import TASKS, Task

if TYPE_CHECKING:
    from tunesmith.config import RunConfig


@dataclass
class TrainingSession:
    cfg: RunConfig
    run: RunFolder
    task: Task
    model: Any  # the method-applied model (what is saved and measured)
    tokenizer: Any
    renderer: Any
    data: PreparedData
    accelerator: Any
    wrapped: Any  # the task's objective around the model, prepared by accelerate
    optimizer: Any
    scheduler: Any
    plan: BatchPlan
    total_steps: int
    eval_batches: list[Any]
    watchers: Watchers
    identity: dict[str, Any] = field(default_factory=dict)  # config hash + data fingerprint, for manifests
    resumed_from: Path | None = None  # the checkpoint this run resumed from: never rotated away
    state: LoopState | None = None  # the loop's counters, saved with every checkpoint
    collate_fn: Any = None  # the task's rows → batch (made once, before a resume restores its state)

    @property
    def has_eval_loss(self) -> bool:
        return self.task.has_eval_loss and not self.cfg.eval.none

    def evaluate(self) -> float:
        return compute_eval_loss(self.wrapped, self.eval_batches, self.accelerator)

    @property
    def unwrapped(self) -> Any:
        """The objective without accelerate's wrapper (DDP): its parameter names are the same in a run of
        any number of processes, so a checkpoint resumes on another world size."""
        return self.accelerator.unwrap_model(self.wrapped)

    def checkpoint(self, step: int) -> None:
        """Weights, optimizer, scheduler, every rank's RNG, and the watchers' state (with early stopping's
        best weights). DDP keeps weights and optimizer identical on every rank, FSDP gathers them whole:
        rank 0 writes them."""
        rng_states = distributed.gather(rng_state())
        weights, optimizer_state = sharding.trained(self.unwrapped, self.optimizer, keep=distributed.is_main())
        if distributed.is_main():
            extra = {"watchers": self.watchers.state_dict(), "loop": self.loop_counters(), **self.extra_state()}
            best = self.watchers.best_weights or None
            keep = self.cfg.train.keep_checkpoints
            save_checkpoint(
                self.run.checkpoints, step, weights, optimizer_state, self.scheduler, extra, keep, best,
                identity=self.identity, protect=self.resumed_from, rng_states=rng_states,
            )
        distributed.barrier()  # no rank goes on (or stops) before the checkpoint is whole

    def task_eval(self, eval_loss: float | None, when: str) -> dict[str, Any] | None:
        """Eval loss, perplexity and the task's metrics (None with eval.none); the per-record outputs go to
        the run's predictions_<when>.jsonl."""
        if self.cfg.eval.none:
            return None
        with (
            self.accelerator.autocast()
        ):  # the precision training sees (and DPO's references were computed in)
            metrics = self.task.metrics(self.model, self.tokenizer, self.renderer, self.cfg, self.data)
        self._write_predictions(when, metrics.pop("predictions", None), metrics.pop("correct", None))
        if eval_loss is None:
            return metrics
        return {"eval_loss": eval_loss, "perplexity": perplexity(eval_loss), **metrics}

    def _write_predictions(self, when: str, outputs: list[Any] | None, correct: list[bool] | None) -> None:
        if outputs is None or not distributed.is_main():
            return
        rows = prediction_rows(self.data.eval_examples(), outputs, correct)
        atomic_write_text(self.run.predictions(when), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))

    def general_ppl(self) -> float | None:
        """Perplexity on the general-text set (forgetting watch); None when it does not apply."""
        if not self.data.general:
            return None
        with self.accelerator.autocast():
            return general_perplexity(self.model, self.data.general, self.cfg, self.tokenizer.pad_token_id)

    def extra_state(self) -> dict[str, Any]:
        """Per-run state beyond weights and optimizer: the task's (PPO's KL coefficient) and the fp16
        grad scaler's, so a resumed run continues exactly."""
        extra: dict[str, Any] = {}
        task_state = getattr(self.task, "state_dict", None)
        if callable(task_state):
            extra["task_state"] = task_state()
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is not None:
            extra["grad_scaler"] = scaler.state_dict()
        return extra

    def load_extra_state(self, info: dict[str, Any]) -> None:
        loader = getattr(self.task, "load_state_dict", None)
        if callable(loader) and "task_state" in info:
            loader(info["task_state"])
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is not None and "grad_scaler" in info:
            scaler.load_state_dict(info["grad_scaler"])

    def loop_counters(self) -> dict[str, Any]:
        return self.state.counters() if self.state is not None else {}

    def loop_parts(self, callbacks: list[Callback], stop: Any = None) -> LoopParts:
        cfg = self.cfg
        return LoopParts(
            accelerator=self.accelerator,
            model=self.wrapped,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            plan=self.plan,
            pad_id=self.tokenizer.pad_token_id,
            packed=bool(cfg.data.packing),
            train_cfg=cfg.train,
            evaluate=self.evaluate if self.has_eval_loss else None,
            eval_every=cfg.eval.every_steps,
            save_checkpoint=self.checkpoint,
            save_every=cfg.train.save_every_steps,
            callbacks=callbacks,
            collate_fn=self.collate_fn,
            stop=stop,
        )

    def new_state(self) -> LoopState:
        self.state = LoopState(step=0, total_steps=self.total_steps)
        return self.state


def build_session(
    cfg: RunConfig,
    run: RunFolder,
    method: Method,
    task: Task,
    model: Any,
    tokenizer: Any,
    renderer: Any,
    data: PreparedData,
    accelerator: Any,
    say: Any,
) -> TrainingSession:
    packed = bool(cfg.data.packing)
    plan = BatchPlan(
        rows=task.rows(data.train, cfg),
        batch_size=cfg.train.batch_size,
        grad_accum=cfg.train.grad_accum,
        seed=cfg.train.seed,
        group_by_length=cfg.data.group_by_length and not packed,
        num_processes=accelerator.num_processes,
    )
    total_steps = cfg.train.max_steps or max(1, round((cfg.train.epochs or 1.0) * plan.steps_per_epoch))
    fsdp = accelerator.num_processes > 1 and cfg.distributed.strategy == "fsdp"
    if fsdp:  # before the objective is built around it (it reads whether the model is sharded)
        sharding.shard_model(model, cfg.distributed, accelerator.num_processes)
    wrapped = task.objective(model, cfg, data)
    if cfg.train.compile:
        compile_forward(wrapped, say)
    optimizer = build_optimizer(
        wrapped, cfg.train, method.optimizer_class(cfg.method), method.lr_scale(cfg.method)
    )
    scheduler = build_scheduler(optimizer, cfg.train, total_steps)
    if fsdp:  # sharded already: accelerate would wrap it in DDP as well
        optimizer, scheduler = accelerator.prepare(optimizer, scheduler)
    else:
        wrapped, optimizer, scheduler = accelerator.prepare(wrapped, optimizer, scheduler)
    with accelerator.autocast():  # e.g. reference log-probs in the precision the loss will see
        task.before_training(model, method, cfg, data, run.path)
    eval_batches = []
    if task.has_eval_loss and not cfg.eval.none:
        # each rank its share; FSDP's forward is a collective, so there every rank runs every batch
        rank, world = (0, 1) if fsdp else (accelerator.process_index, accelerator.num_processes)
        eval_batches = build_eval_batches(data.eval, cfg, tokenizer.pad_token_id, rank, world, task)
    watchers = Watchers(model, cfg.eval.early_stopping, cfg.eval.overfit_patience, say)
    collate_fn = task.make_collate(model, tokenizer, renderer, cfg)
    return TrainingSession(
        cfg, run, task, model, tokenizer, renderer, data, accelerator, wrapped, optimizer, scheduler, plan,
        total_steps, eval_batches, watchers, _identity(cfg, plan), collate_fn=collate_fn,
    )  # fmt: skip


def check_job(cfg: RunConfig, world: int) -> None:
    """What a job of WORLD processes cannot run with this config: one line before any process starts."""
    multi = TASKS.get(cfg.task.name).multi_process
    shardable = METHODS.get(cfg.method.name).shardable
    distributed.check_job(cfg.distributed, cfg.train, multi, shardable, world)


def _identity(cfg: RunConfig, plan: BatchPlan) -> dict[str, Any]:
    """What a checkpoint's manifest records of the run: config hash, data fingerprint, and the job's shape
    (a resume with another global batch trains differently)."""
    return {**run_identity(cfg), "world_size": plan.num_processes, "rows_per_step": plan.rows_per_step}


def frozen_in_bf16(cfg: RunConfig, method: Method, base: Any) -> bool:
    """Whether the run's frozen base is held in bf16: a switchable method (what is saved is the adapter,
    never the base), a base that is not quantized, and bf16 autocast (or asked for)."""
    if not method.config.switchable or getattr(base, "hf_quantizer", None) is not None:
        return False
    choice = cfg.train.base_dtype
    if choice == "auto":
        return resolve_mixed_precision(cfg.train.mixed_precision) == "bf16"
    return choice == "bfloat16"


def hold_frozen_in(model: Any, dtype: torch.dtype) -> None:
    """Cast the frozen floating-point parameters to DTYPE; trained ones, and buffers (rotary
    frequencies), stay as they are. autocast then runs bf16 matmuls on them without casting each op."""
    for param in model.parameters():
        if not param.requires_grad and param.is_floating_point() and param.dtype != dtype:
            param.data = param.data.to(dtype)


def checkpointed_blocks(cfg: RunConfig, blocks: int) -> int:
    """How many of the model's BLOCKS the config checkpoints when it says so itself (auto: 0, until the
    estimator chooses)."""
    if cfg.train.gradient_checkpointing is not True:
        return 0
    return min(blocks, cfg.train.checkpoint_layers or blocks)


def enable_checkpointing(model: Any, count: int) -> None:
    """Gradient checkpointing on COUNT of the model's blocks, spread evenly (transformers' own per-block
    switch); the input embeddings require grad so a frozen base still passes gradients through."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    enable = getattr(model, "activation_checkpointing_enable", None)  # transformers 5's name
    if enable is not None:
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()
    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    chosen = {int((j + 0.5) * len(layers) / count) for j in range(count)} if count < len(layers) else None
    for index, layer in enumerate(layers):
        layer.gradient_checkpointing = chosen is None or index in chosen


def block_count(model_config: Any) -> int:
    return int(getattr(model_config, "num_hidden_layers", 0) or getattr(model_config, "n_layer", 0) or 1)


def apply_run_settings(base: Any, cfg: RunConfig, method: Method, checkpoint: int | None = None) -> Any:
    """The method, NEFTune and gradient checkpointing (CHECKPOINT blocks when given, else what the config
    says) on a loaded model: what training (and the estimator's probe) runs."""
    model: Any = method.apply(base, cfg.method)
    if frozen_in_bf16(cfg, method, base):
        hold_frozen_in(model, torch.bfloat16)
    if cfg.train.neftune_alpha is not None:
        from tunesmith.engine.neftune import attach_neftune

        attach_neftune(model, cfg.train.neftune_alpha)
    blocks = block_count(base.config)
    count = checkpointed_blocks(cfg, blocks) if checkpoint is None else min(checkpoint, blocks)
    if count > 0:
        enable_checkpointing(model, count)
    return model
