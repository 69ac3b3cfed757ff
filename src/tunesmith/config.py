"""The one typed schema of a run: model / task / data / method / train / eval / output.

Field descriptions double as the reference docs (`tunesmith config show --docs`). Unknown keys fail,
naming the key and the nearest valid one; wrong types name the full config path.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tunesmith.errors import UserError


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

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return _check_format(value)


def _check_format(value: str) -> str:
    from tunesmith.data.formats import FORMATS

    if value != "auto" and value not in FORMATS:
        raise ValueError(f"unknown format {value!r}; known: auto, {', '.join(FORMATS.names())}")
    return value


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
        None, ge=1, description="records drawn from the weighted mix (default: sum of source sizes)"
    )
    checks: Literal["error", "warn", "off"] = Field(
        "error",
        description="fast data checks before training: error (stop on errors), warn (report only), or off",
    )
    text_field: str = Field("text", description="classification: the column holding the text")
    text_pair_field: str | None = Field(None, description="classification: a second text column (pairs)")
    label_field: str = Field("label", description="classification: the column holding the label")

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return _check_format(value)


LORA_KEYS = frozenset(
    {"r", "alpha", "dropout", "target_modules", "use_rslora", "init", "modules_to_save", "loraplus_lr_ratio"}
)
# method name → the method.* keys it reads; a key set for another method is an error, not ignored
METHOD_KEYS: dict[str, frozenset[str]] = {
    "full": frozenset(),
    "freeze": frozenset({"trainable_layers", "trainable_modules"}),
    "lora": LORA_KEYS,
    "dora": LORA_KEYS,
    "qlora": LORA_KEYS | {"quant_type", "double_quant", "paged_optimizer"},
    "adapter": frozenset({"placement", "reduction_factor", "activation"}),
    "prefix": frozenset({"num_virtual_tokens", "prefix_projection", "projection_hidden_size"}),
    "prompt": frozenset({"num_virtual_tokens", "prompt_init_text"}),
    "ia3": frozenset({"target_modules", "feedforward_modules"}),
}
# methods that prepend virtual tokens per sample, so samples cannot share a packed row
UNPACKABLE_METHODS = frozenset({"prefix", "prompt"})


class MethodConfig(Section):
    """One flat section for every method; each method accepts only its own keys (see METHOD_KEYS)."""

    name: str = Field("lora", description="how the model learns: " + ", ".join(METHOD_KEYS))
    # LoRA family (lora, dora, qlora)
    r: int = Field(16, ge=1, description="LoRA rank")
    alpha: int = Field(32, gt=0, description="LoRA scaling numerator (scale = alpha / r, or alpha / sqrt(r))")
    dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the LoRA input")
    target_modules: str | list[str] | None = Field(
        None,
        description="modules the method wraps: a list of names, or all-linear; default: all-linear for "
        "the LoRA family, peft's per-architecture choice for ia3",
    )
    use_rslora: bool = Field(False, description="rank-stabilised LoRA: scale alpha / sqrt(r)")
    loraplus_lr_ratio: float | None = Field(
        None, gt=0, description="LoRA+ (Hayou et al., 2024): B matrices learn this many times faster than A (e.g. 16)"
    )
    init: Literal["default", "gaussian", "pissa", "olora"] = Field(
        "default",
        description="LoRA init: default (B = 0), gaussian, pissa (principal singular vectors), olora",
    )
    modules_to_save: list[str] = Field(
        default_factory=list, description="extra modules trained in full and saved (e.g. lm_head)"
    )
    # qlora
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type of the frozen base")
    double_quant: bool = Field(True, description="quantize the quantization constants too")
    paged_optimizer: bool = Field(True, description="bitsandbytes paged AdamW (spills to CPU under pressure)")
    # ia3
    feedforward_modules: list[str] | None = Field(
        None, description="ia3 targets whose input (not output) is rescaled; default: the MLP targets"
    )
    # adapter
    placement: Literal["houlsby", "pfeiffer"] = Field(
        "pfeiffer", description="houlsby: after attention and after the MLP; pfeiffer: after the MLP only"
    )
    reduction_factor: int = Field(16, gt=1, description="bottleneck size = hidden size / reduction_factor")
    activation: Literal["relu", "gelu", "silu", "tanh"] = Field("relu", description="bottleneck activation")
    # prefix, prompt
    num_virtual_tokens: int = Field(20, ge=1, description="learned prefix / soft-prompt length")
    prefix_projection: bool = Field(
        False, description="prefix: reparameterise the prefixes through a two-layer MLP (Li & Liang, 2021)"
    )
    projection_hidden_size: int = Field(512, ge=1, description="prefix: hidden size of that MLP")
    prompt_init_text: str | None = Field(
        None, description="prompt: initialise the soft prompt from this text's token embeddings"
    )
    # freeze
    trainable_layers: int | None = Field(None, ge=0, description="freeze: train the top k transformer blocks")
    trainable_modules: list[str] = Field(
        default_factory=list,
        description="freeze: also train parameters whose name or layer type contains one of these patterns "
        "(e.g. norm, lm_head; glob wildcards allowed)",
    )

    @model_validator(mode="after")
    def _keys_of_method(self) -> MethodConfig:
        _check_section_keys(self, self.name, METHOD_KEYS, "method")
        if self.name == "freeze" and self.trainable_layers is None and not self.trainable_modules:
            raise ValueError("method freeze needs trainable_layers and/or trainable_modules")
        return self

    def used(self) -> dict[str, Any]:
        """This method's keys and values (what config.yaml records)."""
        keys = METHOD_KEYS[self.name] | {"name"}
        return {k: v for k, v in self.model_dump(mode="json").items() if k in keys}


RL_KEYS = frozenset({"reward_functions", "reward_model", "max_new_tokens", "temperature", "clip_range"})
TASK_KEYS: dict[str, frozenset[str]] = {
    "instruction": frozenset(),
    "causal_lm": frozenset(),
    "classification": frozenset({"head", "class_weights", "resample", "prompt"}),
    "generation": frozenset(),
    "dpo": frozenset(
        {"loss", "beta", "label_smoothing", "simpo_gamma", "desirable_weight", "undesirable_weight"}
    ),
    "reward": frozenset(),
    "grpo": RL_KEYS | {"group_size", "beta", "advantage"},
    "ppo": RL_KEYS
    | {"kl_coef", "kl_target", "kl_horizon", "vf_coef", "gamma", "lam", "clip_range_value", "ppo_epochs"},
}


class RewardFunctionConfig(Section):
    function: str = Field(
        description="a Python callable as module:function, called as f(prompt, completion) → float"
    )
    weight: float = Field(1.0, description="its weight in the summed reward")
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="extra keyword arguments for the function"
    )


class TaskConfig(Section):
    """What the model learns to do; `task: NAME` is short for `task: {name: NAME}`."""

    name: str = Field("instruction", description="task: " + ", ".join(TASK_KEYS))
    head: Literal["auto", "sequence", "generate"] = Field(
        "auto",
        description="classification: sequence (a classification head; on decoders over the last token) or "
        "generate (the causal LM learns to answer with the label word); auto: sequence",
    )
    class_weights: Literal["none", "balanced"] = Field(
        "none", description="classification: weight the loss by inverse class frequency (balanced)"
    )
    resample: bool = Field(False, description="classification: oversample smaller classes up to the largest")
    prompt: str = Field(
        "Classify the text. Answer with one of: {labels}.\n\n{text}",
        description="classification with head generate: the user turn; {labels} and {text} are filled in",
    )

    loss: Literal["sigmoid", "ipo", "cdpo", "hinge", "robust", "simpo", "orpo", "kto"] = Field(
        "sigmoid",
        description="dpo: sigmoid (DPO), ipo, cdpo (label-smoothed), hinge (SLiC), robust (rDPO), simpo and "
        "orpo (no reference), kto (unpaired)",
    )
    beta: float = Field(0.1, gt=0, description="dpo: inverse temperature β (IPO's τ, ORPO's λ)")
    label_smoothing: float = Field(
        0.1, ge=0, lt=0.5, description="dpo with loss cdpo or robust: share of flipped labels ε"
    )
    simpo_gamma: float = Field(0.5, ge=0, description="dpo with loss simpo: target reward margin γ")
    desirable_weight: float = Field(1.0, gt=0, description="dpo with loss kto: weight of thumbs-up examples")
    undesirable_weight: float = Field(
        1.0, gt=0, description="dpo with loss kto: weight of thumbs-down examples"
    )

    # ppo, grpo
    reward_functions: list[RewardFunctionConfig] = Field(
        default_factory=list, description="ppo/grpo: reward callables, summed with their weights"
    )
    reward_model: str | None = Field(
        None, description="ppo/grpo: a reward run folder whose model scores completions"
    )
    max_new_tokens: int = Field(32, ge=1, description="ppo/grpo: tokens sampled per completion at most")
    temperature: float = Field(1.0, gt=0, description="ppo/grpo: sampling temperature of rollouts")
    clip_range: float = Field(0.2, gt=0, description="ppo/grpo: ratio clipping ε")
    group_size: int = Field(4, ge=2, description="grpo: completions sampled per prompt")
    advantage: Literal["grpo", "dr_grpo", "rloo", "reinforce_pp"] = Field(
        "grpo", description="grpo: advantage estimator (group-normalised, Dr. GRPO, RLOO leave-one-out, REINFORCE++)"
    )
    kl_coef: float = Field(0.05, ge=0, description="ppo: initial per-token KL penalty β")
    kl_target: float | None = Field(
        None, gt=0, description="ppo: adapt β toward this KL (Ziegler et al.); fixed when unset"
    )
    kl_horizon: int = Field(10000, ge=1, description="ppo: horizon of the adaptive KL controller")
    vf_coef: float = Field(0.1, ge=0, description="ppo: weight of the value loss")
    gamma: float = Field(1.0, gt=0, le=1, description="ppo: discount")
    lam: float = Field(0.95, ge=0, le=1, description="ppo: GAE λ")
    clip_range_value: float = Field(0.2, gt=0, description="ppo: value clipping")
    ppo_epochs: int = Field(
        1, ge=1, description="ppo: optimizer steps on each rollout batch (old log-probs fixed)"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _keys_of_task(self) -> TaskConfig:
        _check_section_keys(self, self.name, TASK_KEYS, "task")
        if self.name in ("ppo", "grpo") and not self.reward_functions and not self.reward_model:
            raise ValueError(
                f"task {self.name} needs a reward source: task.reward_functions and/or task.reward_model"
            )
        return self

    def used(self) -> dict[str, Any]:
        keys = TASK_KEYS[self.name] | {"name"}
        return {k: v for k, v in self.model_dump(mode="json").items() if k in keys}


def _check_section_keys(section: BaseModel, name: str, table: dict[str, frozenset[str]], kind: str) -> None:
    """Only the chosen component's keys may be set: a key of another component is an error."""
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(table)}")
    foreign = sorted(section.model_fields_set - table[name] - {"name"})
    if foreign:
        valid = ", ".join(sorted(table[name])) or "none"
        raise ValueError(f"{', '.join(foreign)} not used by {kind} {name} (its keys: {valid})")


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
    gradient_checkpointing: bool = False
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
    log_every_steps: int = Field(1, ge=1)


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


class RunConfig(Section):
    model: ModelConfig = Field(default_factory=ModelConfig)
    task: TaskConfig = Field(default_factory=TaskConfig, description="what the model learns to do")
    data: DataConfig
    method: MethodConfig = Field(default_factory=MethodConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @property
    def sequence_head(self) -> bool:
        """A scoring head instead of the LM head: classification (unless it generates the label word)
        and reward models."""
        return (
            self.task.name == "classification" and self.task.head != "generate"
        ) or self.task.name == "reward"

    @property
    def _kl_weight(self) -> float:
        return self.task.beta if self.task.name == "grpo" else self.task.kl_coef

    @property
    def paired(self) -> bool:
        """Samples come in (chosen, rejected) pairs that must stay together in a batch."""
        return self.task.name == "reward" or (self.task.name == "dpo" and self.task.loss != "kto")

    @model_validator(mode="after")
    def _cross_checks(self) -> RunConfig:
        problems = []
        if self.data.eval is not None and self.data.eval_split is not None:
            problems.append("data.eval and data.eval_split are both set; keep one")
        if self.train.max_steps is not None and self.train.epochs is not None:
            problems.append("train.max_steps and train.epochs are both set; keep one")
        if self.eval.early_stopping is not None and (self.eval.every_steps is None or self.eval.none):
            problems.append("eval.early_stopping needs evaluations during training: set eval.every_steps")
        if self.method.name in UNPACKABLE_METHODS and self.data.packing:
            problems.append(
                f"data.packing: true does not work with method.name={self.method.name} "
                "(virtual tokens are prepended to each sample); set data.packing: false"
            )
        if self.sequence_head and self.data.packing:
            problems.append("data.packing: true does not work with a scoring head (one text per row)")
        if (
            self.task.name in ("ppo", "grpo")
            and self.method.name in ("full", "freeze")
            and self._kl_weight > 0
        ):
            problems.append(
                f"task {self.task.name} with method.name={self.method.name}: the KL reference is the model with its "
                "method switched off, which full/freeze cannot do; use lora (or another adapter method), or set "
                "the KL weight (task.beta / task.kl_coef) to 0"
            )
        if self.task.name == "dpo" and self.data.packing:
            problems.append("data.packing: true does not work with task dpo (answers are scored one per row)")
        if problems:
            raise ValueError("; ".join(problems))
        if self.data.packing is None:
            self.data.packing = (
                self.method.name not in UNPACKABLE_METHODS
                and not self.sequence_head
                and self.task.name not in ("dpo", "ppo", "grpo")
            )
        return self


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.lr=1e-3` → (['train', 'lr'], 0.001); the value is read as YAML."""
    if "=" not in text:
        raise UserError(f"override {text!r} is not key.sub=value")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise UserError(f"override {text!r} has an empty key")
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        keys, value = parse_override(text)
        node = raw
        for key in keys[:-1]:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif isinstance(child, str):  # `task: classification` then `task.head=generate`
                child = node[key] = {"name": child}
            if not isinstance(child, dict):
                raise UserError(f"override {text!r}: {key} is not a section")
            node = child
        node[keys[-1]] = value
    return raw


def load_config(
    source: str | Path | dict[str, Any] | RunConfig, overrides: list[str] | None = None,
    base_dir: Path | None = None,
) -> RunConfig:
    """Build a RunConfig from a YAML path, a dict or a RunConfig, then apply dotted overrides.

    Relative data paths in a YAML file are resolved against the file's folder (for a dict: BASE_DIR).
    """
    if isinstance(source, RunConfig):
        if not overrides:
            return source
        source = source.model_dump(mode="json")
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise UserError(f"config file {path} does not exist")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise UserError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
        if not isinstance(raw, dict):
            raise UserError(f"{path}: the config must be a mapping of sections")
        base_dir = path.resolve().parent
    else:
        raw = dict(source)
    raw = apply_overrides(_deepcopy(raw), overrides or [])
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, raw)) from None
    if base_dir is not None:
        _resolve_data_paths(config, base_dir)
    return config


def _deepcopy(raw: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(yaml.safe_dump(raw)) if raw else {}


def _resolve_data_paths(config: RunConfig, base_dir: Path) -> None:
    def fix(path: str) -> str:
        candidate = base_dir / path
        return str(candidate) if not Path(path).is_absolute() and candidate.exists() else path

    def fix_all(spec: str | list[str | SourceConfig] | None) -> Any:
        if spec is None:
            return None
        if isinstance(spec, str):
            return fix(spec)
        return [fix(s) if isinstance(s, str) else s.model_copy(update={"path": fix(s.path)}) for s in spec]

    config.data.train = fix_all(config.data.train)
    config.data.eval = fix_all(config.data.eval)


def format_validation_error(exc: ValidationError, raw: dict[str, Any] | None = None) -> str:
    """One line per problem, each naming the full config path; unknown keys get a suggestion."""
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"] if not _is_union_tag(part)]
        path = ".".join(loc) or "config"
        if err["type"] == "extra_forbidden":
            valid = _valid_keys_at(loc[:-1], raw or {})
            close = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.5)
            hint = f"; did you mean {'.'.join([*loc[:-1], close[0]])}?" if close else ""
            lines.append(f"unknown config key {path}{hint} (valid here: {', '.join(valid)})")
        elif err["type"] == "missing":
            lines.append(f"config key {path} is required")
        elif err["type"] == "value_error" and isinstance(err.get("input"), dict):  # a section-level check
            lines.append(f"config section {path}: {err['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"config key {path}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(dict.fromkeys(lines))


def _is_union_tag(part: Any) -> bool:
    # pydantic puts union member names (e.g. 'str', 'list[...]', 'SourceConfig') into error locations
    return isinstance(part, str) and (part[:1].isupper() or "[" in part or part in {"str", "int", "float"})


def _valid_keys_at(loc: list[str], raw: dict[str, Any]) -> list[str]:
    chosen: dict[str, tuple[type[BaseModel], dict[str, frozenset[str]], str]] = {
        "method": (MethodConfig, METHOD_KEYS, "lora"),
        "task": (TaskConfig, TASK_KEYS, "instruction"),
    }
    if len(loc) == 1 and loc[0] in chosen:  # only the keys of the method / task the user chose
        schema, table, default = chosen[loc[0]]
        section = raw.get(loc[0])
        name = section.get("name", default) if isinstance(section, dict) else default
        if name in table:
            return [k for k in schema.model_fields if k == "name" or k in table[name]]
    model: type[BaseModel] = RunConfig
    for part in loc:
        if part.isdigit():
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        sub = _section_type(field.annotation)
        if sub is None:
            return []
        model = sub
    return list(model.model_fields)


def _section_type(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _section_type(arg)
        if found is not None:
            return found
    return None


def dump_config(config: RunConfig) -> str:
    """The resolved config as YAML; the method section holds only the chosen method's keys."""
    raw = config.model_dump(mode="json")
    raw["method"] = config.method.used()
    raw["task"] = config.task.used()
    return yaml.safe_dump(raw, sort_keys=False)
