"""HOW parameters change: each method is a model transform, chosen by `method.name`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tunesmith.methods.adapter import AdapterMethod
from tunesmith.methods.base import DEFAULT_NAME, Method, count_parameters, trainable_state_bytes
from tunesmith.methods.freeze import FreezeMethod
from tunesmith.methods.full import FullMethod
from tunesmith.methods.ia3 import Ia3Method
from tunesmith.methods.lora import DoraMethod, LoraMethod
from tunesmith.methods.prefix import PrefixMethod
from tunesmith.methods.prompt import PromptMethod
from tunesmith.methods.qlora import QloraMethod
from tunesmith.methods.vera import VeraMethod
from tunesmith.registry import Registry

METHODS: Registry[Method] = Registry("method", "method.name", plugin_group="tunesmith.methods", default="lora")
for _method in (
    FullMethod(),
    FreezeMethod(),
    LoraMethod(),
    DoraMethod(),
    QloraMethod(),
    AdapterMethod(),
    PrefixMethod(),
    PromptMethod(),
    Ia3Method(),
    VeraMethod(),
):
    METHODS.register(_method.name)(_method)


@contextmanager
def base_only(model: Any, method: Method) -> Iterator[None]:
    """Run the base model for a while: the method switched off (adapters disabled). Full and freeze
    change the base weights themselves; for them this is the model as it is (the start, before training)."""
    if not method.config.switchable:
        yield
        return
    method.activate(model, None)
    try:
        yield
    finally:
        method.activate(model, DEFAULT_NAME)


__all__ = ["DEFAULT_NAME", "METHODS", "Method", "base_only", "count_parameters", "trainable_state_bytes"]
