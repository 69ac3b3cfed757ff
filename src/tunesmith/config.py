"""The one typed schema of a run: model / task / data / method / train / eval / output.

The sections no component owns live in `tunesmith.sections`; `method:` and `task:` are unions of the
sections each registered method and task defines beside its code (plugins included), told apart by
`name`. This module names no component: the cross-field rules ask the chosen sections for their traits.
Field descriptions double as the reference docs (`tunesmith config show --docs`, docs/config.md).
Unknown keys fail, naming the key and the nearest valid one; wrong types name the full config path.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

import yaml
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, model_validator

from tunesmith.data.formats import FORMATS
from tunesmith.errors import UserError
from tunesmith.methods import METHODS
from tunesmith.sections import (
    DataConfig,
    DistributedConfig,
    EarlyStoppingConfig,
    EvalConfig,
    GateRule,
    MemorizationConfig,
    MethodSection,
    ModelConfig,
    OutputConfig,
    Section,
    SourceConfig,
    TrainConfig,
)
from tunesmith.tasks import TASKS

DEFAULT_METHOD, DEFAULT_TASK = str(METHODS.default), str(TASKS.default)
# config section → (its registry, the name used when the section does not give one)
CHOSEN: dict[str, tuple[Any, str]] = {"method": (METHODS, DEFAULT_METHOD), "task": (TASKS, DEFAULT_TASK)}


def section_classes(kind: str) -> dict[str, type[Any]]:
    """name → section class, in registration order, for `method` or `task`."""
    registry = CHOSEN[kind][0]
    return {name: registry.get(name).config for name in registry.registered()}


def _union(kind: str) -> Any:
    classes = tuple(section_classes(kind).values())
    return Annotated[Union[classes], Field(discriminator="name")]  # noqa: UP007 (a runtime tuple)


if TYPE_CHECKING:  # to the type checker a section is any of its members
    MethodConfig = Any
    TaskConfig = Any
else:
    MethodConfig = _union("method")
    TaskConfig = _union("task")


def method_section(raw: dict[str, Any]) -> MethodSection:
    """A `method:` mapping → the chosen method's section (for code and tests that build one alone)."""
    section: MethodSection = TypeAdapter(MethodConfig).validate_python({"name": DEFAULT_METHOD, **raw})
    return section


class RunConfig(Section):
    model: ModelConfig = Field(default_factory=ModelConfig)
    task: TaskConfig = Field(
        default_factory=lambda: TASKS.get(DEFAULT_TASK).config.model_validate({}),
        description="what the model learns to do",
    )
    data: DataConfig
    method: MethodConfig = Field(default_factory=lambda: METHODS.get(DEFAULT_METHOD).config.model_validate({}))
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)

    @model_validator(mode="before")
    @classmethod
    def _chosen_names(cls, value: Any) -> Any:
        """`task: NAME` is short for `task: {name: NAME}`; a section without `name` gets the default one;
        an unknown name lists the registered ones."""
        if not isinstance(value, dict):
            return value
        value = dict(value)
        for kind, (registry, default) in CHOSEN.items():
            section = value.get(kind)
            if isinstance(section, str):
                section = {"name": section}
            if isinstance(section, dict):
                section = {"name": default, **section}
                if section["name"] not in registry:
                    raise ValueError(
                        f"{kind}.name: unknown {kind} {section['name']!r}; known: {', '.join(registry.registered())}"
                    )
                value[kind] = section
        return value

    @model_validator(mode="after")
    def _known_formats(self) -> RunConfig:
        """Record formats come from their registry (plugins included); a miss names the key."""
        data = self.data
        named = [("data.format", data.format)]
        for split, spec in (("train", data.train), ("eval", data.eval)):
            if isinstance(spec, list):
                named += [(f"data.{split}.{i}.format", s.format) for i, s in enumerate(spec) if isinstance(s, SourceConfig)]
        bad = [f"{key}: unknown format {value!r}" for key, value in named if value != "auto" and value not in FORMATS]
        if bad:
            raise ValueError(f"{'; '.join(bad)}; known: auto, {', '.join(FORMATS.names())}")
        return self

    @property
    def sequence_head(self) -> bool:
        """A scoring head instead of the LM head (classification's sequence head, reward models)."""
        return bool(self.task.sequence_head)

    @property
    def paired(self) -> bool:
        """Samples come in (chosen, rejected) pairs that must stay together in a batch."""
        return bool(self.task.paired)

    @model_validator(mode="after")
    def _cross_checks(self) -> RunConfig:
        problems = []
        task, method = self.task, self.method
        if self.data.eval is not None and self.data.eval_split is not None:
            problems.append("data.eval and data.eval_split are both set; keep one")
        if self.train.max_steps is not None and self.train.epochs is not None:
            problems.append("train.max_steps and train.epochs are both set; keep one")
        if self.eval.early_stopping is not None and (self.eval.every_steps is None or self.eval.none):
            problems.append("eval.early_stopping needs evaluations during training: set eval.every_steps")
        if not method.packable and self.data.packing:
            problems.append(
                f"data.packing: true does not work with method.name={method.name} "
                "(virtual tokens are prepended to each sample); set data.packing: false"
            )
        if self.data.packing and not task.packing_allowed:
            why = (
                "a scoring head (one text per row)" if task.sequence_head
                else f"task {task.name} (answers are scored one per row)"
            )
            problems.append(f"data.packing: true does not work with {why}")
        if task.base_reference_weight > 0 and not method.switchable:
            problems.append(
                f"task {task.name} with method.name={method.name}: the KL reference is the model with its "
                "method switched off, which full/freeze cannot do; use lora (or another adapter method), or set "
                "the KL weight (task.beta / task.kl_coef) to 0"
            )
        if problems:
            raise ValueError("; ".join(problems))
        if self.data.packing is None:
            self.data.packing = method.packable and task.packs_by_default
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
    return "; ".join(validation_problems(exc, raw))


def validation_problems(exc: ValidationError, raw: dict[str, Any] | None = None) -> list[str]:
    """The problems of a config, one per entry, each naming its config path (the studio puts each beside
    its field)."""
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"] if not _is_union_tag(part)]
        if len(loc) > 1 and loc[0] in CHOSEN and loc[1] == _chosen_name(loc[0], raw or {}):
            del loc[1]  # the discriminated union's tag: `method.lora.r` is `method.r`
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
    return list(dict.fromkeys(lines))


def _is_union_tag(part: Any) -> bool:
    # pydantic puts union member names (e.g. 'str', 'list[...]', 'SourceConfig') into error locations
    return isinstance(part, str) and (part[:1].isupper() or "[" in part or part in {"str", "int", "float"})


def _chosen_name(kind: str, raw: dict[str, Any]) -> str:
    section = raw.get(kind)
    default = CHOSEN[kind][1]
    if isinstance(section, str):
        return section
    return str(section.get("name", default)) if isinstance(section, dict) else default


def _valid_keys_at(loc: list[str], raw: dict[str, Any]) -> list[str]:
    if loc and loc[0] in CHOSEN:  # the keys of the method / task the user chose
        classes = section_classes(loc[0])
        chosen = classes.get(_chosen_name(loc[0], raw))
        if chosen is None:
            return []
        if len(loc) == 1:
            return list(chosen.model_fields)
        model: type[BaseModel] = chosen
        loc = loc[1:]
    else:
        model = RunConfig
    for part in loc:
        if part.isdigit():
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        sub = section_type(field.annotation)
        if sub is None:
            return []
        model = sub
    return list(model.model_fields)


def section_type(annotation: Any) -> type[BaseModel] | None:
    """The section class an annotation holds (`X`, `X | None`, ...), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = section_type(arg)
        if found is not None:
            return found
    return None


def dump_config(config: RunConfig) -> str:
    """The resolved config as YAML (the method and task sections hold only the chosen ones' keys)."""
    raw = config.model_dump(mode="json")
    return yaml.safe_dump(raw, sort_keys=False)


__all__ = [
    "DataConfig", "EarlyStoppingConfig", "EvalConfig", "GateRule", "MemorizationConfig", "MethodConfig",
    "ModelConfig", "OutputConfig", "RunConfig", "Section", "SourceConfig", "TaskConfig", "TrainConfig",
    "load_config", "method_section",
]
