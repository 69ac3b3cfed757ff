"""HOW parameters change: each method is a model transform, chosen by `method.name`."""

from __future__ import annotations

from tunesmith.methods.base import Method, count_parameters
from tunesmith.methods.full import FullMethod
from tunesmith.methods.lora import LoraMethod
from tunesmith.registry import Registry

METHODS: Registry[Method] = Registry("method", "method.name")
METHODS.register("full")(FullMethod())
METHODS.register("lora")(LoraMethod())

__all__ = ["METHODS", "Method", "count_parameters"]
