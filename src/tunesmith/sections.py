"""The sections of a run's config that no component owns (model, data, train, eval, output) and the
bases of those that components own (`MethodSection`, `TaskSection`: each method and task defines its
own section beside its code, and `tunesmith.config` assembles them into one schema from the registries).

Light on purpose (pydantic only): every layer imports it, so it imports no tunesmith component.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(Section):
    path: str = Field(
        "smollm2-135m-instruct",
        description="HF model folder, .gguf file, hub id already in the local cache, or a packaged alias",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bf16 on GPUs that support it, fp32 on CPU"
    )
    trust_remote_code: bool = Field(False, description="run code shipped with the model (off by default)")
    attn_implementation: Literal["auto", "eager", "sdpa", "flash_attention_2"] = Field(
        "auto", description="attention kernel; auto lets transformers pick (sdpa where available)"
    )
    revision: str | None = Field(None, description="hub revision when model.path is a hub id")
    allow_pickle_weights: bool = Field(
        False, description="load .bin / .pt weights (pickle: can run code); off: safetensors only"
    )

    @model_validator(mode="after")
    def _pinned_remote_code(self) -> ModelConfig:
        """Remote code from a hub model must be the code you looked at: a pinned revision."""
        if self.trust_remote_code and self.revision is None and not Path(self.path).expanduser().exists():
            raise ValueError(
                "model.trust_remote_code on a hub model needs model.revision (a commit hash) so the code that runs "
                "is the code you reviewed"
            )
        return self


class SourceConfig(Section):
    path: str = Field(description="a .jsonl/.json/.csv/.parquet file or a folder of .txt files")
    format: str = Field("auto", description="record format; auto-detected from the first record")
    columns: dict[str, str] = Field(default_factory=dict, description="format field -> file column")
    weight: float = Field(1.0, gt=0, description="mixing weight relative to the other sources")



class DataConfig(Section):
    train: str | list[str | SourceConfig] = Field(
        description="training data: a path, or a list of sources with their own format/columns/weight"
    )
    eval: str | list[str | SourceConfig] | None = Field(None, description="held-out evaluation data")
    eval_split: float | None = Field(
        None, gt=0, lt=1, description="share of train held out for eval when data.eval is not given"
    )
    format: str = Field("auto", description="default record format for sources that do not set one")
    columns: dict[str, str] = Field(default_factory=dict, description="default column mapping")
    max_length: int = Field(512, ge=8, description="tokens per sample (and per packed row)")
    packing: bool | None = Field(
        None,
        description="pack several samples per row, attention never crossing them; "
        "default: on, except for prefix/prompt tuning",
    )
    truncation: Literal["truncate", "drop", "error"] = Field(
        "truncate",
        description="a sample longer than max_length: truncate (keep the start), drop it, or error",
    )
    train_on_prompt: bool = Field(False, description="also train on system/user tokens")
    chat_template: str = Field(
        "auto", description="auto: the tokenizer's template, chatml when it has none; or a named template"
    )
    system_prompt: str | None = Field(None, description="system message added to chats that have none")
    group_by_length: bool = Field(True, description="batch samples of similar length when packing is off")
    num_mix_samples: int | None = Field(
        None, ge=1, description="records drawn from the weighted mix, each source in proportion to weight × size "
        "(default: round(weight × size) per source)"
    )
    checks: Literal["error", "warn", "off"] = Field(
        "error",
        description="fast data checks before training: error (stop on errors), warn (report only), or off",
    )
    text_field: str = Field("text", description="classification: the column holding the text")
    text_pair_field: str | None = Field(None, description="classification: a second text column (pairs)")
    label_field: str = Field("label", description="classification: the column holding the label")





class ComponentSection(Section):
    """A section whose keys depend on the component chosen by `name`. A key that another component of the
    same kind reads is refused naming the chosen component's keys (not just "unknown")."""

    kind: ClassVar[str] = ""  # "method" or "task": the config section it fills
    name: str

    @model_validator(mode="before")
    @classmethod
    def _keys_of_another(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        own = set(cls.model_fields)
        others = {key for sub in _family(cls) for key in sub.model_fields} - own
        foreign = sorted(set(value) & others)
        if foreign:
            valid = ", ".join(sorted(own - {"name"})) or "none"
            chosen = value.get("name", cls.model_fields["name"].default)
            raise ValueError(f"{', '.join(foreign)} not used by {cls.kind} {chosen} (its keys: {valid})")
        return value

    def used(self) -> dict[str, Any]:
        """This component's keys and values (what config.yaml records)."""
        return self.model_dump(mode="json")


def _family(cls: type[ComponentSection]) -> list[type[ComponentSection]]:
    """Every section of the same kind defined so far (built-in and plugin components alike)."""
    root = next(base for base in cls.__mro__ if base in (MethodSection, TaskSection))
    found, todo = [], list(root.__subclasses__())
    while todo:
        sub = todo.pop()
        found.append(sub)
        todo.extend(sub.__subclasses__())
    return found


class MethodSection(ComponentSection):
    """The `method:` section of one method. Traits the cross-field checks ask about:"""

    kind: ClassVar[str] = "method"
    packable: ClassVar[bool] = True  # samples can share a packed row (not with per-sample virtual tokens)
    switchable: ClassVar[bool] = True  # the method can be switched off to run the base (not full/freeze)


class TaskSection(ComponentSection):
    """The `task:` section of one task. Traits the cross-field checks and the pipeline ask about:"""

    kind: ClassVar[str] = "task"
    # the record format the task reads its data as, whatever data.format says (None: any chat format)
    record_format: ClassVar[str | None] = None

    @property
    def sequence_head(self) -> bool:
        """A scoring head instead of the LM head (one text per row)."""
        return False

    @property
    def paired(self) -> bool:
        """Samples come in (chosen, rejected) pairs that must stay together in a batch."""
        return False

    @property
    def packing_allowed(self) -> bool:
        return not self.sequence_head

    @property
    def packs_by_default(self) -> bool:
        return self.packing_allowed

    @property
    def base_reference_weight(self) -> float:
        """The weight of a KL penalty against the base model run with the method switched off (RL): when
        above 0, the method must be switchable."""
        return 0.0

    def check(self) -> None:
        """Rules within the section beyond field types (ValueError)."""
        return None

    @model_validator(mode="after")
    def _own_rules(self) -> TaskSection:
        self.check()
        return self


class TrainConfig(Section):
    max_steps: int | None = Field(None, ge=1, description="optimizer steps; replaces epochs when set")
    epochs: float | None = Field(None, gt=0, description="passes over the data (default 1 if no max_steps)")
    batch_size: int = Field(8, ge=1, description="rows per micro-batch")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")
    lr: float = Field(2.0e-4, gt=0, description="peak learning rate")
    weight_decay: float = Field(0.0, ge=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0, description="gradient clipping; null turns it off")
    seed: int = 0
    save_every_steps: int | None = Field(None, ge=1, description="checkpoint cadence (always at the end)")
    save_every_minutes: float | None = Field(
        30.0, gt=0, description="also checkpoint when this much time passed since the last save (null: off)"
    )
    stop_grace_s: float = Field(
        60.0, gt=0, description="after SIGTERM/SIGINT: seconds to reach the next step boundary and checkpoint"
    )
    nan_policy: Literal["error", "skip_step"] = Field(
        "error", description="a non-finite loss or gradient norm: stop naming the batch, or skip that update"
    )
    max_consecutive_skips: int = Field(10, ge=1, description="skip_step: stop after this many skips in a row")
    auto_micro_batch: bool = Field(
        False, description="on out-of-memory, halve the micro-batch and double grad_accum (same effective batch)"
    )
    deterministic: bool = Field(
        False, description="deterministic kernels (torch.use_deterministic_algorithms): bit-equal reruns, slower on GPU"
    )
    keep_checkpoints: int = Field(2, ge=1, description="checkpoints kept, newest first")
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 autocast where the GPU or CPU runs bf16 natively, else none"
    )
    gradient_checkpointing: bool | Literal["auto"] = Field(
        "auto",
        description="recompute blocks' activations in backward instead of keeping them: true (all blocks, or "
        "checkpoint_layers of them), false, or auto: the fewest blocks for which the estimate fits "
        "memory_budget_gb (none when the run fits without)",
    )
    checkpoint_layers: int | None = Field(
        None, ge=1, description="with gradient_checkpointing true: how many blocks, spread evenly (null: all)"
    )
    memory_budget_gb: float | None = Field(
        None, gt=0, description="gradient_checkpointing auto: the peak memory to stay under (null: the device's "
        "memory less headroom)",
    )
    base_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="the frozen base of adapter methods (LoRA family, adapters, prompts, IA3): auto holds it in "
        "bfloat16 when training runs in bf16 autocast (no per-op weight casts, half the weight memory); the trained "
        "weights, their gradients and optimizer state stay float32",
    )
    compile: bool = Field(
        False, description="torch.compile the training forward (falls back to eager with one warning line)"
    )
    label_smoothing: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="token / class cross-entropy label smoothing (training only; regulariser)",
    )
    neftune_alpha: float | None = Field(
        None,
        gt=0,
        description="NEFTune: uniform noise of scale alpha/sqrt(L·d) on input embeddings while training",
    )
    log_every_steps: int = Field(
        1, ge=1, description="a step line in train.log (and to the trackers) every N steps; metrics.jsonl keeps every step"
    )


class EarlyStoppingConfig(Section):
    metric: Literal["eval_loss"] = Field("eval_loss", description="the metric watched (lower is better)")
    patience: int = Field(3, ge=1, description="evaluations without improvement before stopping")
    min_delta: float = Field(0.0, ge=0, description="smallest decrease that counts as an improvement")


class MemorizationConfig(Section):
    samples: int = Field(16, ge=0, description="training and held-out samples probed each (0 turns it off)")
    prefix_share: float = Field(0.5, gt=0, lt=1, description="share of the answer shown before the cut")
    max_tokens: int = Field(32, ge=1, description="tokens after the cut the model must reproduce")


class GateRule(Section):
    """Thresholds one metric must meet after training, else the run's status is `failed-gate`."""

    max_increase: float | None = Field(
        None, ge=0, description="largest allowed relative rise vs before (0.1 = 10%)"
    )
    max_decrease: float | None = Field(None, ge=0, description="largest allowed relative drop vs before")
    min: float | None = Field(None, description="the value after training must be at least this")
    max: float | None = Field(None, description="the value after training must be at most this")
    beat_base: bool = Field(False, description="must be better than before training (direction-aware)")

    @model_validator(mode="after")
    def _some_rule(self) -> GateRule:
        if not self.model_fields_set:
            raise ValueError("a gate needs a rule: max_increase, max_decrease, min, max or beat_base")
        return self


class EvalConfig(Section):
    none: bool = Field(False, description="turn evaluation off")
    every_steps: int | None = Field(None, ge=1, description="evaluation cadence (also before and after)")
    batch_size: int | None = Field(None, ge=1, description="defaults to train.batch_size")
    num_samples: int = Field(2, ge=0, description="sample answers generated before and after training")
    max_new_tokens: int = Field(64, ge=1, description="generation: new tokens per answer at most")
    stop: list[str] = Field(default_factory=list, description="generation: strings that end an answer")
    early_stopping: EarlyStoppingConfig | None = Field(
        None, description="stop when eval_loss stops improving; the best step's weights become final/"
    )
    generation_limit: int | None = Field(
        None, ge=1, description="generation / classification metrics on at most this many eval records"
    )
    memorization: MemorizationConfig = Field(
        default_factory=MemorizationConfig,
        description="after training: how often training vs held-out answers are completed verbatim",
    )
    forgetting: bool = Field(
        True, description="perplexity on general text before and after (forgetting watch)"
    )
    general_data: str | None = Field(
        None, description="general text for the forgetting watch (default: the set shipped with tunesmith)"
    )
    overfit_patience: int = Field(
        3, ge=1, description="warn when eval loss rose this many evaluations in a row while train loss fell"
    )
    gates: dict[str, GateRule] = Field(
        default_factory=dict,
        description="metric → rule, e.g. {general_perplexity: {max_increase: 0.1}, accuracy: {beat_base: true}}",
    )


class DistributedConfig(Section):
    """How a run of several processes (`tunesmith train --nproc N`, torchrun, accelerate launch) shares the
    work. A run of one process ignores it."""

    strategy: Literal["ddp", "fsdp", "deepspeed"] = Field(
        "ddp",
        description="ddp: every process holds the whole model and averages gradients (gloo on CPU, NCCL on "
        "CUDA); fsdp: FSDP2 (torch's fully_shard on each block and the model) keeps 1/N of the weights, "
        "gradients and optimizer state on each process, on CPU and CUDA; deepspeed (ZeRO): not yet available",
    )
    fsdp_sharding: Literal["full", "hybrid"] = Field(
        "full",
        description="fsdp only. full: shard over every process of the job; hybrid: shard within a node, "
        "replicate across nodes (less traffic between nodes, more memory per GPU)",
    )


class OutputConfig(Section):
    dir: str = Field("runs", description="root folder of run folders")
    name: str | None = Field(None, description="run folder name, one plain path component (default: a timestamp)")
    trackers: list[Literal["tensorboard", "mlflow", "wandb"]] = Field(
        default_factory=list, description="also log to these trackers (W&B offline); needs their packages"
    )


    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        """A run name is one folder inside output.dir: `--overwrite` must never reach outside it."""
        if value is None:
            return value
        bad = (
            not value.strip() or value in (".", "..") or "/" in value or "\\" in value or value.startswith("~")
            or "\0" in value or value != value.strip()
        )
        if bad:
            raise ValueError(f"{value!r} is not a plain folder name (no '/', '..', '.', '~' or empty names)")
        return value


