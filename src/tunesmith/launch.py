"""`tunesmith train CONFIG --nproc N`: N local processes of `tunesmith train`, started and watched by
PyTorch's own launcher (torch.distributed.elastic, what `torchrun --standalone` runs), never a home-made one.

What this module adds to torchrun: the checks a user should get before any process starts (N against the
machine's cores or GPUs), threads per process set to share the cores, and one line instead of the
launcher's traceback when a rank fails (which rank, how, and what to do).
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from typing import Any

from tunesmith.errors import UserError

# exit statuses every rank ends with and rank 0 has explained: a bad input (2), a failed quality gate (3),
# a stop by SIGINT / SIGTERM (130, 143)
EXPLAINED = {2, 3, 130, 143}


def check_nproc(nproc: int) -> None:
    """N processes fit the machine: one per GPU with CUDA, at most one per CPU core without."""
    import torch

    if nproc < 1:
        raise UserError(f"--nproc {nproc}: give 1 or more processes")
    if torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        if nproc > gpus:
            raise UserError(f"--nproc {nproc}: this machine has {gpus} GPU(s); one process per GPU at most")
        return
    cores = os.cpu_count() or 1
    if nproc > cores:
        raise UserError(
            f"--nproc {nproc}: this machine has {cores} CPU cores; at most {cores} processes (gloo, one per core)"
        )


def launch(nproc: int, args: list[str], grace_s: float = 60.0) -> int:
    """Run `python -m tunesmith ARGS` as NPROC ranks of one job on this machine (NPROC already passed
    `check_nproc`); returns the exit status. GRACE_S (train.stop_grace_s): how long the ranks may take after
    a SIGTERM to reach a step boundary and checkpoint before the launcher kills them."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    for name in list(logging.root.manager.loggerDict):  # its notices and tracebacks: the ranks say what matters
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()), rdzv_backend="c10d",
        rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.5, shutdown_timeout=int(grace_s) + 30,
    )  # fmt: skip
    try:
        elastic_launch(config, sys.executable)("-m", "tunesmith", *args)
    except ChildFailedError as exc:
        return _failed(exc)
    except SignalException as exc:  # SIGTERM / SIGINT to the launcher: passed on to every rank, which stop
        return 128 + int(exc.sigval)  # at one step boundary with one checkpoint; rank 0 has said so
    return 0


def _failed(exc: Any) -> int:
    """The first rank that failed: its status, and one line naming it unless rank 0 ended the same way
    (then rank 0 has said why, for every rank)."""
    rank, failure = exc.get_first_failure()
    code = failure.exitcode
    rank_zero = exc.failures.get(0)
    if code in EXPLAINED and rank_zero is not None and rank_zero.exitcode == code:
        return int(code)
    how = f"was killed by {failure.signal_name()}" if code < 0 else f"failed with exit status {code}"
    print(
        f"error: rank {rank} {how}; the other ranks were stopped. --resume continues from the newest "
        "complete checkpoint, if the run had written one",
        file=sys.stderr,
    )
    return 1 if code < 0 else int(code)
