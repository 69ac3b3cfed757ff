"""What chat, generate and serve talk to: a TARGET loaded exactly as training left it.

TARGET is a run folder (its base, method, chat template, system prompt and labels), an exported folder
(a merged HF folder, or an adapter export: peft adapter + the base it belongs to), a Hugging Face model
folder, a `.gguf` file, or an alias. Extra runs (`--adapter NAME=RUN`) of the same method on the same
base are loaded onto that one base and switched by name per request; the base itself stays reachable
(the method switched off) wherever the method is a removable add-on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from tunesmith.config import RunConfig, load_config
from tunesmith.data.records import Message
from tunesmith.data.templates import ChatRenderer, build_renderer
from tunesmith.errors import UserError
from tunesmith.methods import Method
from tunesmith.runs.tuned import TunedModels, read_run

ADAPTER_EXPORT = "export.json"  # an adapter export names its base here


@dataclass
class LoadedTarget:
    """A loaded model with its results switchable by name (`use`)."""

    name: str  # the default model id (a run's name)
    base_name: str  # the id of the base model, method switched off
    model: nn.Module
    tokenizer: Any
    renderer: ChatRenderer
    config: RunConfig
    system_prompt: str | None
    results: list[str] = field(default_factory=list)  # switchable trained results (run names)
    method: Method | None = None
    labels: list[str] = field(default_factory=list)
    bank: TunedModels | None = None
    active: str | None = None

    @property
    def model_ids(self) -> list[str]:
        ids = list(self.results) or [self.name]
        return [*ids, self.base_name] if self.can_use_base and self.base_name not in ids else ids

    @property
    def can_use_base(self) -> bool:
        return self.bank is not None or not self.results

    @property
    def stop_ids(self) -> list[int]:
        return sorted({self.renderer.end_of_turn_id, self.tokenizer.eos_token_id} - {None})

    @property
    def context_length(self) -> int:
        cfg = getattr(self.model, "config", None)
        for key in ("max_position_embeddings", "n_positions", "max_seq_len"):
            value = getattr(cfg, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048

    def use(self, model_id: str) -> nn.Module:
        """Activate one result (or the base) by its model id; returns the model."""
        if model_id not in self.model_ids:
            raise UserError(f"unknown model {model_id!r}; served: {', '.join(self.model_ids)}")
        if self.bank is not None and model_id != self.active:
            self.bank.use(None if model_id == self.base_name else model_id)
        self.active = model_id
        return self.model

    def chat_ids(self, messages: list[Message]) -> list[int]:
        """Token ids of a chat (the run's system prompt added when it has none), ready for the answer."""
        if self.system_prompt and (not messages or messages[0].role != "system"):
            messages = [Message("system", self.system_prompt), *messages]
        text = self.renderer.render(messages, add_generation_prompt=True)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def text_ids(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt)["input_ids"])


def load_served(text: str, adapters: dict[str, str] | None = None) -> LoadedTarget:
    """Load TARGET (and any extra runs as switchable adapters) for inference."""
    adapters = adapters or {}
    path = Path(text)
    if (path / "config.yaml").is_file():
        if path.name in adapters:
            raise UserError(f"--adapter {path.name}: that name is TARGET's own model id; choose another name")
        return _load_runs({path.name: text, **adapters})
    if adapters:
        raise UserError(f"--adapter needs TARGET to be a run folder; {text} is a plain model")
    if (path / ADAPTER_EXPORT).is_file() and (path / "adapter_config.json").is_file():
        return _load_adapter_export(path)
    return _load_plain(text)


def _load_runs(runs: dict[str, str]) -> LoadedTarget:
    first_name, first_path = next(iter(runs.items()))
    run = read_run(first_path)
    base_name = _base_id(run.config.model.path)
    if base_name in runs:
        raise UserError(f"adapter name {base_name!r} is the base model's id; choose another name")
    if not run.config.method.switchable or run.config.sequence_head:
        if len(runs) > 1:
            raise UserError(
                f"run {first_name} uses method {run.config.method.name}: it changes the base weights, so it "
                "cannot share a base with other adapters; serve it on its own"
            )
        from tunesmith.runs.evaluation import Target, load_target

        model, tokenizer = load_target(Target(first_name, run.config, run), run.labels)
        return _loaded(first_name, base_name, model, tokenizer, run.config, [first_name], run.method, run.labels)
    _check_same_chat(first_name, run.config, runs)
    bank = TunedModels(runs)
    loaded = _loaded(
        first_name, base_name, bank.model, bank.tokenizer, run.config, list(runs), run.method, run.labels
    )
    loaded.bank = bank
    loaded.use(first_name)
    return loaded


def _check_same_chat(first_name: str, config: RunConfig, runs: dict[str, str]) -> None:
    """Adapters share one tokenizer and renderer: they must have trained with the same template and system
    prompt, or an adapter would be served in a format it never saw."""
    for name, path in runs.items():
        other = read_run(path).config.data
        for key in ("chat_template", "system_prompt"):
            if getattr(other, key) != getattr(config.data, key):
                raise UserError(
                    f"--adapter {name}: data.{key} is {getattr(other, key)!r}, run {first_name} has "
                    f"{getattr(config.data, key)!r}; serve runs that differ in their chat format separately"
                )


def _loaded(
    name: str,
    base_name: str,
    model: nn.Module,
    tokenizer: Any,
    config: RunConfig,
    results: list[str],
    method: Method | None,
    labels: list[str],
) -> LoadedTarget:
    renderer = build_renderer(tokenizer, config.data.chat_template)
    model.eval()
    return LoadedTarget(
        name, base_name, model, tokenizer, renderer, config, config.data.system_prompt, results, method, labels
    )


def _load_plain(text: str) -> LoadedTarget:
    from tunesmith.models.load import load_causal_lm, load_tokenizer, resolve_model

    config = load_config({"model": {"path": text}, "task": "instruction", "data": {"train": "-"}})
    source = resolve_model(config.model)
    tokenizer = load_tokenizer(source, config.model)
    model = load_causal_lm(source, config.model)
    name = _base_id(text)
    return _loaded(name, name, model, tokenizer, config, [], None, [])


def _load_adapter_export(path: Path) -> LoadedTarget:
    """An adapter export: the peft folder on the base model named in its export.json."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from tunesmith.models.load import load_causal_lm, resolve_model

    info = json.loads((path / ADAPTER_EXPORT).read_text())
    base = info.get("base_model")
    if not isinstance(base, str):
        raise UserError(f"{path / ADAPTER_EXPORT}: no base_model; re-export the run")
    folder = info.get("base_model_folder")
    if isinstance(folder, str) and (Path(folder) / "config.json").is_file():
        base = folder  # the resolved HF folder: independent of the directory the export is used from
    config = load_config(
        {
            "model": {"path": base},
            "task": "instruction",
            "data": {"train": "-", "chat_template": info.get("chat_template_name", "auto")},
        }
    )
    config.data.system_prompt = info.get("system_prompt")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = PeftModel.from_pretrained(load_causal_lm(resolve_model(config.model), config.model), path)
    return _loaded(path.name, _base_id(base), model, tokenizer, config, [path.name], None, [])


def _base_id(text: str) -> str:
    path = Path(text)
    return path.stem if path.suffix == ".gguf" else (path.name or text)
