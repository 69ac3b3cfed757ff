"""Out-of-memory, recognised the same way on every device: CUDA's OutOfMemoryError, Python's
MemoryError, or torch's CPU allocator failing (a RuntimeError saying it "can't allocate memory")."""

from __future__ import annotations

import torch


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)
