"""HOW parameters change: each method is a model transform, chosen by `method.name`."""

from __future__ import annotations

from tunesmith.methods.adapter import AdapterMethod
from tunesmith.methods.base import DEFAULT_NAME, Method, count_parameters, trainable_state_bytes
from tunesmith.methods.freeze import FreezeMethod
from tunesmith.methods.full import FullMethod
from tunesmith.methods.ia3 import Ia3Method
from tunesmith.methods.lora import DoraMethod, LoraMethod
from tunesmith.methods.prefix import PrefixMethod
from tunesmith.methods.prompt import PromptMethod
from tunesmith.methods.qlora import QloraMethod
from tunesmith.registry import Registry

METHODS: Registry[Method] = Registry("method", "method.name")
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
):
    METHODS.register(_method.name)(_method)

__all__ = ["DEFAULT_NAME", "METHODS", "Method", "count_parameters", "trainable_state_bytes"]
