"""Run the heavy commands under tcmalloc when the machine has it.

PyTorch on CPU allocates every tensor through the C library's malloc. With glibc's malloc the freed
activations of a step fragment its heap: on SmolLM2 + LoRA (4k-token micro-batches, 2 cores) resident
memory peaked at 8.2 GB for ~5.4 GB of live tensors (measured with glibc's mmap threshold pinned, which
returns every large block but halves the speed). tcmalloc (Debian: libtcmalloc-minimal4, which
`make dev` installs) keeps that run at 5.8 GB and is faster (495 vs 430 tokens/s); jemalloc's defaults
measured 5.4 GB but half the speed. This is what Intel's PyTorch launcher does too: the allocator has to
be chosen before the process starts, so `tunesmith train` (and the other model-running commands)
re-executes itself once with tcmalloc preloaded; the process id stays the same, so launchers and
signals are unaffected. `TUNESMITH_ALLOCATOR=system` keeps the C library's malloc; without tcmalloc
installed nothing changes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

HEAVY_COMMANDS = {"train", "eval", "serve", "chat", "generate", "feedback", "estimate", "export", "ui", "tune"}
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")
LIBRARY_NAMES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4")
ENV = "TUNESMITH_ALLOCATOR"


def find_tcmalloc() -> Path | None:
    for folder in LIBRARY_DIRS:
        for name in LIBRARY_NAMES:
            if (Path(folder) / name).is_file():
                return Path(folder) / name
    return None


def tcmalloc_env(environ: dict[str, str]) -> dict[str, str] | None:
    """The environment to re-execute with, or None when there is nothing to do."""
    if not sys.platform.startswith("linux") or environ.get(ENV) in ("system", "tcmalloc"):
        return None
    if current(environ) == "tcmalloc":
        return None
    library = find_tcmalloc()
    if library is None:
        return None
    preload = " ".join(p for p in (str(library), environ.get("LD_PRELOAD", "")) if p)
    # tcmalloc reports every allocation above 1 GB on stderr by default: our output stays ours
    return {**environ, "LD_PRELOAD": preload, ENV: "tcmalloc", "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40)}


def use_tcmalloc(argv: list[str] | None = None) -> None:
    """Replace this process by itself (python + ARGV, default sys.argv) under tcmalloc; returns when it
    already runs under it, when it is not installed, or with TUNESMITH_ALLOCATOR=system. A script calls it
    first thing, before its heavy work (examples/demo/run_demo.py does)."""
    env = tcmalloc_env(dict(os.environ))
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *(sys.argv if argv is None else argv)], env)


def reexec_with_tcmalloc(args: list[str]) -> None:
    """`tunesmith ARGS` under tcmalloc, for a heavy command (returns when not needed)."""
    command = next((a for a in args if not a.startswith("-")), None)
    if command in HEAVY_COMMANDS:
        use_tcmalloc(["-m", "tunesmith", *args])


def current(environ: Mapping[str, str] = os.environ) -> str:
    """The allocator of a process with ENVIRON (default this one): tcmalloc (preloaded) or the C library's."""
    return "tcmalloc" if "tcmalloc" in environ.get("LD_PRELOAD", "") else "libc"
