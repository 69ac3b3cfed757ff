"""Training state (optimizer, scheduler, RNG) without pickle: tensors to a safetensors file, everything
else to JSON, so loading a checkpoint from someone else can never run code.

torch's own `state_dict`s mix tensors, ints, floats, tuples, numpy arrays and int-keyed dicts; `encode`
turns such a value into JSON-able data plus a flat {key: tensor} map, and `decode` rebuilds it exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

TENSOR, ARRAY, TUPLE, DICT = "__tensor__", "__ndarray__", "__tuple__", "__dict__"


def encode(value: Any, tensors: dict[str, torch.Tensor], path: str = "s") -> Any:
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().contiguous().cpu()
        return {TENSOR: path}
    if isinstance(value, np.ndarray):
        return {ARRAY: value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {TUPLE: [encode(v, tensors, f"{path}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode(v, tensors, f"{path}.{i}") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not any(k.startswith("__") for k in value):
            return {k: encode(v, tensors, f"{path}.{k}") for k, v in value.items()}
        return {DICT: [[k, encode(v, tensors, f"{path}.{i}")] for i, (k, v) in enumerate(value.items())]}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a checkpoint without pickle")


def decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if TENSOR in value:
        return tensors[value[TENSOR]]
    if ARRAY in value:
        return np.asarray(value[ARRAY], dtype=value["dtype"])
    if TUPLE in value:
        return tuple(decode(v, tensors) for v in value[TUPLE])
    if DICT in value:
        return {k: decode(v, tensors) for k, v in value[DICT]}
    return {k: decode(v, tensors) for k, v in value.items()}
