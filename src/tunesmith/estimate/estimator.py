"""What a run will cost before it runs: parameters, peak memory by part, time, whether it fits, and the
cheapest changes that would make it fit. Weights are never read: parameter counts come from the model
built on the meta device, activation memory and speed from the probe (`probe.py`: the run's own method,
task objective, precision and batch shape on a one- and a two-block model built from the config).

Peak memory = framework (Python, torch, tokenizer, data: a constant measured on this machine) + weights +
gradients and AdamW's two moments of the trainable weights + activations (the bytes autograd keeps for
backward, per block times the number of blocks plus the embedding / head / loss part, times a factor for
the allocator's slack and the backward pass's buffers, fitted on measured runs).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import torch

from tunesmith import allocator
from tunesmith.config import RunConfig, load_config
from tunesmith.data.templates import run_renderer
from tunesmith.engine import distributed
from tunesmith.engine.precision import resolve_mixed_precision
from tunesmith.errors import UserError
from tunesmith.estimate.devices import GPU_UTILISATION, Device, find_device
from tunesmith.estimate.probe import (
    ProbeResult,
    adamw_seconds_per_param,
    first_touch_seconds_per_byte,
    probe_step,
)
from tunesmith.methods import METHODS, count_parameters
from tunesmith.models.load import load_tokenizer, pick_dtype, resolve_model
from tunesmith.tasks import TASKS
from tunesmith.training import apply_run_settings, block_count, check_job, checkpointed_blocks, frozen_in_bf16

# fitted by least squares on this machine's runs under tcmalloc (benchmarks/bench_estimate.py): the resident memory of a
# training process beyond weights, optimizer state and activations (Python, torch, tokenizer, data), and
# the resident memory per byte autograd keeps (allocator slack, the backward pass's own buffers); on a GPU
# `peak_memory_mb` is the allocator's peak, which holds neither the interpreter nor the CUDA context
FRAMEWORK_MB = {"cpu": 680.0, "cuda": 300.0}
ACTIVATION_FACTOR = {"cpu": 1.22, "cuda": 1.1}
STEP_OVERHEAD = 1.1  # collation and bookkeeping beyond forward, backward and the optimizer step
# with gradient checkpointing, backward's recomputation holds more than the one block it recomputes: in
# blocks' worth of un-checkpointed activations, fitted to the checkpointed runs here (LoRA and full)
RECOMPUTE_BLOCKS = 8.0
# glibc malloc's fragmentation of freed activations, against tcmalloc's (measured on the same run:
# resident 8.2 GB vs 5.8 GB): a Python-API run without tcmalloc preloaded
LIBC_MALLOC_SLACK = 1.4
# the first step creates the moments, gradients and activations in memory the process never touched: in
# units of the kernel's measured page cost (probe.first_touch_seconds_per_byte), fitted to the first
# steps of this machine's runs (full, LoRA, prompt: 1.5 s per fresh GB against 0.65 s per GB of pages)
FIRST_TOUCH_FACTOR = 2.2
HEADROOM = 0.92  # share of the device's memory a run may plan to use


class BudgetTooSmall(UserError):
    """train.memory_budget_gb below every setting's estimate: stops a run before it starts."""


@dataclass
class Estimate:
    device: str
    total_params: int
    trainable_params: int
    peak_memory_mb: float
    train_s: float
    fits: bool
    max_micro_batch: int
    breakdown: dict[str, float]  # MB
    steps: int
    tokens_per_step: float  # tokens (padding included) in one optimizer step
    flops_per_token: float
    memory_mb: float  # what the device offers
    notes: list[str] = field(default_factory=list)
    checkpointed_blocks: int = 0  # blocks whose activations backward recomputes (auto: chosen here)
    allocator: str = field(default_factory=allocator.current)  # the memory figures are for it (CPU)
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    processes: int = 1  # the memory figures are per process; the time is the job's
    strategy: str = "single"  # ddp or fsdp with several processes

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Plan:
    """What the estimate needs from the run's data: the step count and the micro-batches' shape."""

    steps: int
    widest: list[Any]  # the widest micro-batch's rows (peak memory)
    tokens_per_micro: float  # mean padded tokens per micro-batch (time)
    data: Any
    processes: int = 1  # each step's rows are shared by this many processes


def estimate_config(config: Any, overrides: list[str] | None = None, device: str = "cpu",
                    memory_gb: float | None = None, processes: int = 1) -> Estimate:
    cfg = load_config(config, overrides or [])
    return estimate_run(cfg, find_device(device, memory_gb), processes=processes)


def estimate_run(cfg: RunConfig, device: Device, suggest: bool = True, processes: int = 1) -> Estimate:
    """PROCESSES > 1: one process of a job of that many, sharing the work as cfg.distributed says."""
    check_job(cfg, processes)
    task = _estimable_task(cfg)
    source = resolve_model(cfg.model)
    tokenizer = load_tokenizer(source, cfg.model)
    plan = _plan(cfg, task, tokenizer, processes=processes)
    result = _estimate(cfg, device, source, tokenizer, task, plan)
    if suggest and not result.fits:
        result.suggestions = _suggestions(cfg, device, source, tokenizer, task, plan, result)
    return result


def _estimable_task(cfg: RunConfig) -> Any:
    task = TASKS.get(cfg.task.name).start()  # a fresh one: the probe builds its objective
    if not task.estimable:
        raise UserError(
            f"estimate: task {cfg.task.name} is not estimated yet (its step needs reference log-probs or "
            "rollouts); the summary of a run of it has its measured peak memory and time"
        )
    return task


def _plan(cfg: RunConfig, task: Any, tokenizer: Any, data: Any = None, processes: int = 1) -> _Plan:
    if data is None:
        data = task.prepare(cfg, tokenizer, run_renderer(cfg, tokenizer))
    rows = task.rows(data.train, cfg)
    if not rows:
        raise UserError("estimate: the training data gives no rows")
    per_step = cfg.train.batch_size * cfg.train.grad_accum * processes
    steps = cfg.train.max_steps or max(1, round((cfg.train.epochs or 1.0) * math.ceil(len(rows) / per_step)))
    widths = sorted(sum(len(s) for s in row) for row in rows)
    order = sorted(range(len(rows)), key=lambda i: -sum(len(s) for s in rows[i]))
    widest = [rows[i] for i in order[: cfg.train.batch_size]]
    if cfg.data.packing or cfg.data.group_by_length:
        mean_width = sum(widths) / len(widths)  # rows of similar width batch together
    else:  # a random micro-batch pads to its widest row: the expected largest of B draws
        mean_width = widths[min(len(widths) - 1, int(len(widths) * (1 - 1 / (cfg.train.batch_size + 1))))]
    return _Plan(steps, widest, cfg.train.batch_size * mean_width, data, processes)


def _model_class(cfg: RunConfig) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    return AutoModelForSequenceClassification if cfg.sequence_head else AutoModelForCausalLM


def _config_with(model_config: Any, blocks: int | None, cfg: RunConfig, labels: list[str], pad_id: int) -> Any:
    config = model_config.__class__.from_dict(model_config.to_dict())
    if blocks is not None:
        config.num_hidden_layers = blocks
    if cfg.sequence_head:
        config.num_labels = max(1, len(labels)) if cfg.task.name != "reward" else 1
        config.pad_token_id = pad_id
    return config


def _counts(cfg: RunConfig, model_config: Any, labels: list[str], pad_id: int) -> tuple[int, int]:
    """(trainable, total) parameters of the run's model."""
    from accelerate import init_empty_weights

    model = _empty_model(cfg, model_config, labels, pad_id, None)
    with init_empty_weights():
        model = METHODS.get(cfg.method.name).apply(model, cfg.method)
    return count_parameters(model)


def _outside_blocks(cfg: RunConfig, model_config: Any, labels: list[str], pad_id: int) -> int:
    """Parameters of the base model outside its blocks (embeddings, final norm, head)."""
    return count_parameters(_empty_model(cfg, model_config, labels, pad_id, 0))[1]


def _empty_model(cfg: RunConfig, model_config: Any, labels: list[str], pad_id: int, blocks: int | None) -> Any:
    """The run's base model on the meta device (no memory), with BLOCKS of its blocks when given."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        model = _model_class(cfg).from_config(_config_with(model_config, blocks, cfg, labels, pad_id))
    output, inputs = model.get_output_embeddings(), model.get_input_embeddings()
    if getattr(model.config, "tie_word_embeddings", False) and output is not None and inputs is not None:
        output.weight = inputs.weight  # shared embeddings count once (tied outside: meta re-creates parameters)
    return model


def _probe(cfg: RunConfig, model_config: Any, task: Any, plan: _Plan, pad_id: int, device: Device) -> ProbeResult:
    method = METHODS.get(cfg.method.name)
    dtype = pick_dtype(cfg.model.dtype)

    def build(blocks: int) -> Any:
        torch.manual_seed(0)
        config = _config_with(model_config, blocks, cfg, plan.data.labels, pad_id)
        model = _model_class(cfg).from_config(config, dtype=dtype)
        return task.objective(apply_run_settings(model, cfg, method), cfg, plan.data)

    precision = resolve_mixed_precision(cfg.train.mixed_precision)
    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = partial(torch.autocast, "cpu", dtype=half) if half is not None else nullcontext
    batch = task.collate(plan.widest, pad_id, bool(cfg.data.packing))
    return probe_step(build, batch, autocast)


def _with_checkpointing(cfg: RunConfig, on: bool) -> RunConfig:
    train = cfg.train.model_copy(update={"gradient_checkpointing": on, "checkpoint_layers": None})
    return cfg.model_copy(update={"train": train})


# probes already made in this process, by config (less what the probe does not see: the job around one
# process, costed in `_share`, and where the run is written), device and the widest micro-batch's rows
_MADE: dict[tuple[Any, ...], ProbeResult] = {}


class _Probes:
    """The probe of the run's step without and with checkpointing, each made once, when first needed."""

    def __init__(self, cfg: RunConfig, model_config: Any, task: Any, plan: _Plan, pad_id: int, device: Device):
        self.args = (model_config, task, plan, pad_id, device)
        self.cfg = cfg
        widest = tuple(tuple(len(sample) for sample in row) for row in plan.widest)
        shape = (widest, len(plan.data.labels), pad_id)
        self.key = (cfg.model_dump_json(exclude={"distributed", "output"}), device.name, shape)

    def get(self, checkpointed: bool) -> ProbeResult:
        key = (*self.key, checkpointed)
        if key not in _MADE:
            _MADE[key] = _probe(_with_checkpointing(self.cfg, checkpointed), *self.args)
        return _MADE[key]

    def rest(self, blocks: int, count: int) -> ProbeResult:
        """The probe whose non-block part (embeddings, head, loss) and token count stand for the run."""
        return self.get(count == blocks)


def _activations_mb(probes: _Probes, blocks: int, count: int) -> float:
    """Bytes autograd keeps with COUNT of BLOCKS checkpointed (MB), before the allocator's factor."""
    saved = probes.rest(blocks, count).saved_rest_mb
    if count < blocks:
        saved += probes.get(False).saved_per_block_mb * (blocks - count)
    if count > 0:  # backward's recomputation holds more than the one block it recomputes
        recomputed = min(RECOMPUTE_BLOCKS, max(1.0, blocks - 1.0), float(count))
        saved += probes.get(True).saved_per_block_mb * count + recomputed * probes.get(False).saved_per_block_mb
    return saved


def _weights_mb(cfg: RunConfig, total: int, trainable: int) -> float:
    if cfg.method.name == "qlora":
        return total * 0.55 / 2**20  # 4-bit NF4 with its constants
    full = torch.finfo(pick_dtype(cfg.model.dtype)).bits / 8
    frozen = 2.0 if frozen_in_bf16(cfg, METHODS.get(cfg.method.name), None) else full
    return (trainable * full + (total - trainable) * frozen) / 2**20


def _choose_checkpointing(cfg: RunConfig, budget_mb: float, fixed_mb: float, probes: _Probes, blocks: int,
                          factor: float) -> int:
    """gradient_checkpointing auto: the fewest checkpointed blocks whose estimate fits BUDGET_MB."""
    for count in range(blocks + 1):  # memory falls with every block: the first that fits is the fastest
        if fixed_mb + factor * _activations_mb(probes, blocks, count) <= budget_mb:
            return count
    if cfg.train.memory_budget_gb is not None:
        smallest = fixed_mb + factor * _activations_mb(probes, blocks, blocks)
        raise BudgetTooSmall(
            f"train.memory_budget_gb {cfg.train.memory_budget_gb:g}: no setting fits; the smallest estimate, "
            f"every block checkpointed, is {smallest / 1024:.1f} GB (lower train.batch_size or data.max_length)"
        )
    return blocks


def _estimate(cfg: RunConfig, device: Device, source: Any, tokenizer: Any, task: Any, plan: _Plan) -> Estimate:
    from transformers import AutoConfig

    model_config = AutoConfig.from_pretrained(source.folder, trust_remote_code=cfg.model.trust_remote_code)
    blocks = block_count(model_config)
    pad_id = tokenizer.pad_token_id
    trainable, total = _counts(cfg, model_config, plan.data.labels, pad_id)
    probes = _Probes(cfg, model_config, task, plan, pad_id, device)
    on_cpu = device.kind == "cpu"
    factor = ACTIVATION_FACTOR[device.kind]
    notes = []
    if on_cpu and allocator.current() == "libc":  # fragmentation: see tunesmith/allocator.py
        factor *= LIBC_MALLOC_SLACK
        notes.append("this process uses the C library's malloc: the estimate includes its fragmentation "
                     "(tunesmith's commands run under tcmalloc when it is installed: less memory)")
    breakdown = {
        "framework": FRAMEWORK_MB[device.kind],
        "weights": _weights_mb(cfg, total, trainable),
        "gradients": trainable * 4 / 2**20,
        "optimizer": trainable * 8 / 2**20,
    }
    if plan.processes > 1:
        outside = _outside_blocks(cfg, model_config, plan.data.labels, pad_id)
        logits = len(plan.widest) * max(sum(len(s) for s in row) for row in plan.widest) * model_config.vocab_size
        _share(cfg, breakdown, plan.processes, (total, outside, blocks, logits), notes)
    fixed = sum(breakdown.values())
    capacity = device.memory_gb * 1024
    count = checkpointed_blocks(cfg, blocks)
    if cfg.train.gradient_checkpointing == "auto":
        budget = cfg.train.memory_budget_gb * 1024 if cfg.train.memory_budget_gb else capacity * HEADROOM
        count = _choose_checkpointing(cfg, budget, fixed, probes, blocks, factor)
        notes.append(f"gradient checkpointing (auto): {count} of {blocks} blocks for {budget / 1024:.1f} GB")
    activations = factor * _activations_mb(probes, blocks, count)
    breakdown["activations"] = activations
    peak = fixed + activations
    per_row = activations / max(1, len(plan.widest))
    max_micro = max(0, int((capacity * HEADROOM - fixed) // per_row)) if per_row > 0 else cfg.train.batch_size
    tokens_per_step = plan.tokens_per_micro * cfg.train.grad_accum
    recompute = 2 * total * count / blocks
    flops_per_token = 4.0 * total + 2.0 * trainable + recompute  # forward, input gradients, weight gradients
    if on_cpu:
        block_s = (probes.get(False).seconds_per_block * (blocks - count) if count < blocks else 0.0) + (
            probes.get(True).seconds_per_block * count if count else 0.0
        )
        probe = probes.rest(blocks, count)
        seconds_per_token = (block_s + probe.seconds_rest) / max(1, probe.tokens)
        step_s = seconds_per_token * tokens_per_step * STEP_OVERHEAD + adamw_seconds_per_param() * trainable
        fresh_bytes = (breakdown["gradients"] + breakdown["optimizer"] + activations) * 2**20
        first_step_s = FIRST_TOUCH_FACTOR * first_touch_seconds_per_byte() * fresh_bytes
        train_s = step_s * plan.steps + first_step_s
    else:
        assert device.peak_tflops is not None
        train_s = tokens_per_step * plan.steps * flops_per_token / (device.peak_tflops * 1e12 * GPU_UTILISATION)
        notes.append(f"time from {device.peak_tflops} TFLOP/s at {GPU_UTILISATION:.0%} utilisation (not measured)")
    return Estimate(
        device=device.name, total_params=total, trainable_params=trainable, peak_memory_mb=peak, train_s=train_s,
        fits=peak <= capacity * HEADROOM, max_micro_batch=max_micro, breakdown=breakdown, steps=plan.steps,
        tokens_per_step=tokens_per_step, flops_per_token=flops_per_token, memory_mb=capacity, notes=notes,
        checkpointed_blocks=count, processes=plan.processes,
        strategy=cfg.distributed.strategy if plan.processes > 1 else "single",
    )  # fmt: skip


NODE_GPUS = 8  # the node fsdp_sharding: hybrid shards within, for the estimate


def _share(cfg: RunConfig, breakdown: dict[str, float], processes: int, sizes: tuple[int, int, int, int],
           notes: list[str]) -> None:
    """One process's part of a job of PROCESSES. DDP: the whole model, plus its gradient buckets (a second
    copy of the gradients). FSDP: 1/N of the weights, gradients and optimizer state (N: the processes, or a
    node's with hybrid sharding), plus what is gathered whole while it runs: the weights outside the blocks
    (embeddings, head: the root unit) and two blocks (the one running and the next, prefetched); and the
    full logits, which a sharded model's loss needs (one process computes the loss from hidden states in
    chunks). Time: each process runs its share of every step's rows; traffic between processes is not
    modelled. SIZES: (parameters, of them outside the blocks, blocks, logits of the widest micro-batch)."""
    total, outside, blocks, logits = sizes
    if cfg.distributed.strategy == "fsdp":
        shards = min(processes, NODE_GPUS) if cfg.distributed.fsdp_sharding == "hybrid" else processes
        per_param = breakdown["weights"] / max(1, total)
        for part in ("weights", "gradients", "optimizer"):
            breakdown[part] /= shards
        breakdown["fsdp_gathered"] = (outside + 2 * (total - outside) / max(1, blocks)) * per_param
        breakdown["fsdp_logits"] = logits * 10 / 2**20  # bf16 logits, their fp32 copy and its gradient
        notes.append(f"fsdp over {processes} processes ({shards} per shard group): weights, gradients and "
                     "optimizer state sharded; embeddings, head and two blocks gathered whole while they run")
    else:
        breakdown["ddp_buckets"] = breakdown["gradients"]
        notes.append(f"ddp over {processes} processes: each holds the whole model and a second copy of the "
                     "gradients (DDP's buckets)")
    notes.append("time: each process computes its share of every step; traffic between processes not modelled")


def _suggestions(cfg: RunConfig, device: Device, source: Any, tokenizer: Any, task: Any, plan: _Plan,
                 base: Estimate) -> list[dict[str, Any]]:
    """The changes that would fit, cheapest first (by estimated time), each with its estimate."""
    tried: list[tuple[str, list[str]]] = []
    if base.checkpointed_blocks == 0:
        tried.append(("turn on gradient checkpointing", ["train.gradient_checkpointing=true"]))
    if cfg.data.max_length > 64:
        half = cfg.data.max_length // 2
        tried.append((f"halve data.max_length to {half}", [f"data.max_length={half}"]))
    if cfg.method.name in ("full", "freeze"):
        tried.append(("train a LoRA (r 16) instead", ["method={name: lora, r: 16, alpha: 32}"]))
    if 0 < base.max_micro_batch < cfg.train.batch_size:
        factor = math.ceil(cfg.train.batch_size / base.max_micro_batch)
        micro = cfg.train.batch_size // factor
        accum = cfg.train.grad_accum * factor
        tried.append((f"micro-batch {micro} with grad_accum {accum} (same effective batch)",
                      [f"train.batch_size={micro}", f"train.grad_accum={accum}"]))
    found = []
    for change, overrides in tried:
        try:
            changed = load_config(_with_method(cfg, overrides), [o for o in overrides if not o.startswith("method=")])
            same_samples = changed.data.max_length == cfg.data.max_length  # else: tokenize again
            changed_plan = _plan(changed, task, tokenizer, plan.data if same_samples else None, plan.processes)
            estimate = _estimate(changed, device, source, tokenizer, task, changed_plan)
        except UserError:
            continue
        if estimate.fits:
            found.append({"change": change, "overrides": overrides, "peak_memory_mb": estimate.peak_memory_mb,
                          "train_s": estimate.train_s})
    return sorted(found, key=lambda s: s["train_s"])


def _with_method(cfg: RunConfig, overrides: list[str]) -> Any:
    raw = cfg.model_dump(mode="json")
    if any(o.startswith("method=") for o in overrides):
        raw["method"] = {"name": "lora", "r": 16, "alpha": 32}
    return raw


def estimate_for_run(cfg: RunConfig, source: Any, tokenizer: Any, data: Any) -> dict[str, Any] | None:
    """A run's own estimate for its summary (`estimate.peak_memory_mb`, `estimate.train_s`), from the data it
    has prepared; None when the task is not estimable or the probe fails (it must never stop a run)."""
    try:
        task = _estimable_task(cfg)
        device = find_device("cuda" if torch.cuda.is_available() else "cpu", None)
        processes = distributed.launched_world_size()
        found = _estimate(cfg, device, source, tokenizer, task, _plan(cfg, task, tokenizer, data, processes))
    except BudgetTooSmall:
        raise
    except Exception:  # the estimate is a report, not a step of the run: its absence says it failed
        return None
    return {"peak_memory_mb": found.peak_memory_mb, "train_s": found.train_s, "breakdown": found.breakdown,
            "checkpointed_blocks": found.checkpointed_blocks, "allocator": found.allocator}
