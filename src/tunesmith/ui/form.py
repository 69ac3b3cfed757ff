"""The new-run form, built from the config schema (`RunConfig` and the method / task registries), so its
fields, types, defaults and help are the schema's, plugins included; and the browser's values turned
back into a config validated exactly as the CLI validates one (`load_config`), with each problem put
beside the field it names.

What a form may not do: write outside `--runs` (output.dir is the studio's), read data the studio does
not list (data.train / data.eval / eval.general_data are choices among them), load a local model from
outside the folders the studio offers (`--data`, `--runs`, `--models`), score with a reward model that is
not one of its runs, or turn on code execution (model.trust_remote_code, reward functions that import modules,
pickle weights) unless the studio was started with the matching trust flag.
"""

from __future__ import annotations

import json
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from tunesmith.config import CHOSEN, RunConfig, section_classes, section_type, validation_problems
from tunesmith.errors import UserError
from tunesmith.sections import Section

FIXED = {"output.dir", "name"}  # set by the studio / chosen by the section's select
DATA_KEYS = ("data.train", "data.eval", "eval.general_data")  # chosen from the files the studio lists
KEY_IN_MESSAGE = re.compile(r"\b((?:model|data|method|task|train|eval|output|distributed)\.[a-z_][\w.]*)")


@dataclass
class FormField:
    key: str  # the dotted config key
    kind: str  # bool | select | int | float | text | yaml | datafile
    default: str  # as the input shows it ("" for None)
    help: str
    choices: list[str] = field(default_factory=list)
    required: bool = False
    optional: bool = False  # None is a valid value (an empty input)
    variant: str = ""  # for a method / task key: the method / task it belongs to


@dataclass
class FormSection:
    name: str
    fields: list[FormField]
    variants: list[str] = field(default_factory=list)  # method / task: the registered names
    chosen: str = ""  # the default variant


@dataclass
class Trust:
    trust_remote_code: bool = False
    allow_imports: bool = False
    allow_pickle_weights: bool = False


@dataclass
class Places:
    """Where a form may point: data files by their shown names, local models under these folders, reward
    models among the runs under --runs."""

    data_paths: dict[str, str]  # shown name -> path
    model_roots: list[Path]
    runs: Path


def build_form() -> list[FormSection]:
    sections = []
    for name, info in RunConfig.model_fields.items():
        if name in CHOSEN:
            registry, default = CHOSEN[name]
            fields = [f for variant, cls in section_classes(name).items() for f in _fields(cls, f"{name}.", variant)]
            sections.append(FormSection(name, fields, list(section_classes(name)), default))
            continue
        model = section_type(info.annotation)
        if model is not None:
            sections.append(FormSection(name, _fields(model, f"{name}.", "")))
    return sections


def _fields(model: type[BaseModel], prefix: str, variant: str) -> list[FormField]:
    found = []
    for key, info in model.model_fields.items():
        dotted = f"{prefix}{key}"
        if key == "name" and variant or dotted in FIXED:
            continue
        nested = _without_none(info.annotation)[0]  # a sub-section (not a list of them: that is YAML)
        if isinstance(nested, type) and issubclass(nested, Section):
            found += _fields(nested, f"{dotted}.", variant)
            continue
        found.append(_field(dotted, info, variant))
    return found


def _field(key: str, info: FieldInfo, variant: str) -> FormField:
    annotation, optional = _without_none(info.annotation)
    default = _default_text(info)
    helptext = info.description or ""
    required = info.is_required()
    if key in DATA_KEYS:
        return FormField(key, "datafile", "", helptext, required=required, optional=optional, variant=variant)
    if get_origin(annotation) is Literal:
        return FormField(key, "select", default, helptext, [str(c) for c in get_args(annotation)], required,
                         optional, variant)
    kind = {bool: "bool", int: "int", float: "float", str: "text"}.get(annotation, "yaml")
    choices = ["true", "false"] if kind == "bool" else []
    return FormField(key, kind, default, helptext, choices, required, optional, variant)


def _without_none(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) < len(get_args(annotation)):
            return (args[0] if len(args) == 1 else Union[tuple(args)]), True  # noqa: UP007
    return annotation, False


def _default_text(info: FieldInfo) -> str:
    if info.default_factory is not None:
        try:
            value = info.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return ""
    elif info.default is PydanticUndefined:
        return ""
    else:
        value = info.default
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value) if not isinstance(value, BaseModel) else ""


class FormProblems(Exception):
    """What is wrong with a submitted form: {dotted key or "": [messages]}."""

    def __init__(self, problems: dict[str, list[str]]) -> None:
        super().__init__("; ".join(m for ms in problems.values() for m in ms))
        self.problems = problems


def form_config(values: dict[str, str], places: Places, trust: Trust) -> dict[str, Any]:
    """The config a submitted form describes (only the keys the person set), checked by the schema.

    VALUES: dotted key → the input's text."""
    fields = {f.key: f for s in build_form() for f in s.fields if not f.variant or
              values.get(f"{f.key.split('.')[0]}.name") == f.variant}
    problems: dict[str, list[str]] = {}
    raw: dict[str, Any] = {"output": {"dir": str(places.runs)}}
    data_paths = places.data_paths
    for key, text in values.items():
        if key in {f"{section}.name" for section in CHOSEN}:
            _put(raw, key, text)
            continue
        spec = fields.get(key)
        if spec is None:
            problems.setdefault("", []).append(f"{key}: not a key of the chosen method / task")
            continue
        try:
            value = _parse(spec, text, data_paths)
        except ValueError as exc:
            problems.setdefault(key, []).append(str(exc))
            continue
        if value is not _UNSET:
            try:
                _put(raw, key, value)
            except ValueError as exc:
                problems.setdefault(key, []).append(str(exc))
    _check_trust(raw, trust, problems)
    _check_places(raw, places, problems)
    try:
        RunConfig.model_validate(json.loads(json.dumps(raw)))
    except ValidationError as exc:
        for line in validation_problems(exc, raw):
            _file(problems, line, fields)
    if problems:
        raise FormProblems(problems)
    return raw


_UNSET = object()


def _parse(spec: FormField, text: str, data_paths: dict[str, str]) -> Any:
    if text.strip() == "":
        if spec.required:
            raise ValueError("required")
        return None if spec.optional else _UNSET
    if spec.kind == "datafile":
        if text not in data_paths:
            raise ValueError(f"{text!r} is not a data file the studio lists")
        return data_paths[text]
    if spec.kind == "bool":
        if text not in ("true", "false"):
            raise ValueError(f"true or false, not {text!r}")
        return text == "true"
    if spec.kind == "select":
        if text not in spec.choices:
            raise ValueError(f"one of {', '.join(spec.choices)}")
        for choice in get_args(_without_none(_annotation_of(spec))[0]):
            if str(choice) == text:
                return choice
        return text
    if spec.kind == "text":
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ValueError(f"not a valid value: {text!r}") from None


def _annotation_of(spec: FormField) -> Any:
    section, *rest = spec.key.split(".")
    model: Any = section_classes(section)[spec.variant] if spec.variant else section_type(
        RunConfig.model_fields[section].annotation)
    for part in rest[:-1]:
        model = section_type(model.model_fields[part].annotation)
    return model.model_fields[rest[-1]].annotation


def _put(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"{key}: {part} is not a section")
    node[last] = value


def _check_trust(raw: dict[str, Any], trust: Trust, problems: dict[str, list[str]]) -> None:
    model, task = raw.get("model", {}), raw.get("task", {})
    if model.get("trust_remote_code") and not trust.trust_remote_code:
        problems.setdefault("model.trust_remote_code", []).append(
            "the studio was started without --trust-remote-code: a form cannot turn on code from a model")
    if model.get("allow_pickle_weights") and not trust.allow_pickle_weights:
        problems.setdefault("model.allow_pickle_weights", []).append(
            "the studio was started without --allow-pickle-weights: a form cannot load pickle files")
    for key, value in _flat(task, "task."):
        if isinstance(value, str) and ":" in value and "function" in key and not trust.allow_imports:
            problems.setdefault(key.split(".0")[0], []).append(
                "the studio was started without --allow-imports: a form cannot import modules")


def _check_places(raw: dict[str, Any], places: Places, problems: dict[str, list[str]]) -> None:
    """A local model only from the folders the studio was given; a reward model only from its runs."""
    model = raw.get("model", {}).get("path")
    if isinstance(model, str) and _is_local(model) and not _inside(Path(model), places.model_roots):
        roots = ", ".join(str(r) for r in places.model_roots)
        problems.setdefault("model.path", []).append(
            f"a local model must be in a folder the studio offers ({roots}; start it with --models DIR to add one)")
    reward = raw.get("task", {}).get("reward_model")
    if isinstance(reward, str) and not _inside(places.runs / reward, [places.runs]):
        problems.setdefault("task.reward_model", []).append(f"give the name of a run under {places.runs}")


def _is_local(text: str) -> bool:
    """A path on this machine (not a packaged alias, nor a hub id read from the local cache)."""
    from tunesmith.models.load import ALIASES

    return text not in ALIASES and (Path(text).expanduser().exists() or Path(text).is_absolute() or
                                    text.startswith((".", "~")))


def _inside(path: Path, roots: list[Path]) -> bool:
    resolved = path.expanduser().resolve()
    return any(resolved.is_relative_to(root.resolve()) for root in roots)


def _flat(value: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [kv for k, v in value.items() for kv in _flat(v, f"{prefix}{k}.")]
    if isinstance(value, list):
        return [kv for i, v in enumerate(value) for kv in _flat(v, f"{prefix}{i}.")]
    return [(prefix.rstrip("."), value)]


def _file(problems: dict[str, list[str]], line: str, fields: dict[str, FormField]) -> None:
    """Put a schema problem beside the field it names (the first named key that is a field), or on top."""
    for key in KEY_IN_MESSAGE.findall(line):
        key = key.rstrip(".")
        while key and key not in fields and "." in key:
            key = key.rsplit(".", 1)[0]
        if key in fields:
            problems.setdefault(key, []).append(line)
            return
    problems.setdefault("", []).append(line)


def check_form(values: dict[str, str], places: Places, trust: Trust) -> dict[str, Any]:
    try:
        return form_config(values, places, trust)
    except UserError as exc:
        raise FormProblems({"": [str(exc)]}) from None
