"""Devices the estimator knows: this machine (its memory read from the OS, its speed measured by the probe)
and common GPUs from their data sheets (memory, dense bf16 tensor throughput without sparsity)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from tunesmith.errors import UserError


@dataclass(frozen=True)
class Device:
    name: str
    memory_gb: float
    peak_tflops: float | None  # dense bf16; None: measured (this machine)
    kind: str  # "cpu" or "cuda"


GPUS = {
    "t4": Device("T4", 16, 65, "cuda"),
    "l4": Device("L4", 24, 121, "cuda"),
    "a10g": Device("A10G", 24, 70, "cuda"),
    "a100-40": Device("A100 40GB", 40, 312, "cuda"),
    "a100-80": Device("A100 80GB", 80, 312, "cuda"),
    "h100": Device("H100 SXM", 80, 989, "cuda"),
    "h200": Device("H200", 141, 989, "cuda"),
    "rtx3090": Device("RTX 3090", 24, 71, "cuda"),
    "rtx4090": Device("RTX 4090", 24, 165, "cuda"),
    "rtx5090": Device("RTX 5090", 32, 210, "cuda"),
}
GPU_UTILISATION = 0.4  # share of the peak a fine-tuning step reaches on a GPU (stated, not measured here)


def machine_memory_gb() -> float:
    pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return pages * size / 2**30


def find_device(name: str, memory_gb: float | None) -> Device:
    """`cpu` (this machine), `cuda` (the GPU here, by its memory) or a known GPU name."""
    key = name.lower().replace(" ", "").replace("_", "-")
    if key == "cpu":
        device = Device("this machine (CPU)", machine_memory_gb(), None, "cpu")
    elif key == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device here; name one instead: " + ", ".join(GPUS))
        props = torch.cuda.get_device_properties(0)
        known = next((d for d in GPUS.values() if d.name.split()[0].lower() in props.name.lower()), None)
        device = Device(props.name, props.total_memory / 2**30, known.peak_tflops if known else 100.0, "cuda")
    elif key in GPUS:
        device = GPUS[key]
    else:
        raise UserError(f"--device {name}: unknown device; known: cpu, cuda, {', '.join(GPUS)}")
    if memory_gb is not None:
        device = Device(device.name, memory_gb, device.peak_tflops, device.kind)
    return device
