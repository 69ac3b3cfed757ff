"""Checkpoints that are whole or absent: trained weights + optimizer + scheduler + RNG + position.

A checkpoint is written into a hidden temporary folder: the trainable tensors and the optimizer's tensors
as safetensors, everything else as JSON (no pickle anywhere: a checkpoint from someone else cannot run
code), every file fsynced, then `manifest.json` last (sha256 and size of each file, library versions,
the run's config hash and data fingerprint), the folder fsynced and renamed to `step-N`. Loading verifies
the manifest first; a checkpoint that fails is named with the file that is wrong, and resume falls back
to the newest one that verifies. Rotation deletes old checkpoints only after the new one is in place,
never the protected one (what the run resumed from). Leftovers of a killed save are cleaned at start.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from tunesmith.engine.sharding import load_optimizer_state, load_trainable
from tunesmith.engine.state_codec import decode, encode
from tunesmith.errors import UserError
from tunesmith.files import finite_json

STEP_DIR = re.compile(r"^step-(\d+)$")
BEST_FILE = "best_trainable.safetensors"
MANIFEST = "manifest.json"
STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"


class CheckpointError(UserError):
    """A checkpoint that is incomplete, truncated or altered."""


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import safetensors
    import transformers

    try:
        ours = version("tunesmith")
    except PackageNotFoundError:  # running from a source tree that is not installed
        ours = "unknown"
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "safetensors": safetensors.__version__, "tunesmith": ours}


def save_checkpoint(
    root: Path,
    step: int,
    weights: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    scheduler: Any,
    extra: dict[str, Any],
    keep: int,
    best: dict[str, torch.Tensor] | None = None,
    identity: dict[str, Any] | None = None,
    protect: Path | None = None,
    rng_states: list[dict[str, Any]] | None = None,
) -> Path:
    """Write `step-N` atomically (see the module docstring); returns its path.

    weights and optimizer_state: what `sharding.trainable_state` and `sharding.optimizer_state` gathered;
    identity: what the manifest records about the run (config hash, data fingerprint); rng_states: every
    rank's RNG state in rank order (a multi-process run: rank 0 writes them all), default this process's.
    """
    bad = [name for name, tensor in weights.items() if not torch.isfinite(tensor).all()]
    if bad:
        raise CheckpointError(
            f"step {step}: trainable weights are not finite ({bad[0]}); no checkpoint written, the earlier ones kept"
        )
    final = root / f"step-{step}"
    tmp = root / f".tmp-step-{step}-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        trained = (weights, optimizer_state, scheduler)
        _write_files(tmp, step, trained, extra, best, identity or {}, rng_states or [rng_state()])
        _swap_in(tmp, final)
    except (OSError, SafetensorError) as exc:  # a full disk, a file-size limit, a read-only mount
        shutil.rmtree(tmp, ignore_errors=True)
        kept = [p.name for p in list_checkpoints(root)]
        raise CheckpointError(
            f"checkpoint step-{step} could not be written ({_io_reason(exc)}); "
            f"{'the earlier checkpoint ' + kept[-1] + ' is intact' if kept else 'no earlier checkpoint exists'}; "
            "free space and resume with --resume"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(root)[:-keep]:
        if protect is None or old.resolve() != protect.resolve():
            shutil.rmtree(old, ignore_errors=True)
    return final


REQUIRED = ("trainable.safetensors", STATE_TENSORS, STATE_JSON, "state.json")


def _io_reason(exc: BaseException) -> str:
    """The OS's words for a failed write (safetensors wraps them: 'I/O error: File too large (os error 27)')."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).split("I/O error: ")[-1]
    return re.sub(r"\s*\(os error \d+\)$", "", text)


def _write_files(
    tmp: Path, step: int, trained_now: tuple[dict[str, torch.Tensor], dict[str, Any], Any], extra: dict[str, Any],
    best: dict[str, torch.Tensor] | None, identity: dict[str, Any], rng_states: list[dict[str, Any]],
) -> None:
    weights, optimizer_state, scheduler = trained_now
    save_file(weights, str(tmp / "trainable.safetensors"))
    if best:
        save_file({k: v.contiguous().cpu() for k, v in best.items()}, str(tmp / BEST_FILE))
    tensors: dict[str, torch.Tensor] = {}
    extra = dict(extra)
    trained = {"optimizer": optimizer_state, "scheduler": scheduler.state_dict(), "rng": rng_states[0]}
    if len(rng_states) > 1:  # ranks 1..N-1 of a multi-process run
        trained["rng_other_ranks"] = rng_states[1:]
    if "task_state" in extra:  # may hold tensors (PPO's reused rollout): stored the optimizer's way
        trained["task"] = extra.pop("task_state")
    state = encode(trained, tensors)
    save_file(tensors, str(tmp / STATE_TENSORS))
    (tmp / STATE_JSON).write_text(json.dumps(state, allow_nan=False))
    (tmp / "state.json").write_text(json.dumps(finite_json({"step": step, **extra}), indent=2, allow_nan=False))
    files = sorted(p for p in tmp.iterdir() if p.is_file())
    for path in files:
        _fsync(path)
    manifest = {
        "step": step,
        "files": {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)} for p in files},
        "versions": _versions(),
        **identity,
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    _fsync(tmp / MANIFEST)
    _fsync(tmp)


def _swap_in(tmp: Path, final: Path) -> None:
    """Rename the finished folder in; an older folder of the same step is moved aside first and removed
    only once the new one is in place (a kill in between leaves it to `clean_stale` to restore)."""
    aside = final.with_name(f".old-{final.name}")
    if final.exists():
        shutil.rmtree(aside, ignore_errors=True)
        final.rename(aside)
    tmp.rename(final)
    _fsync(final.parent)
    shutil.rmtree(aside, ignore_errors=True)


def clean_stale(root: Path) -> list[str]:
    """Remove what killed saves left (`.tmp-*`); put back a `.old-step-N` whose replacement never arrived."""
    notes: list[str] = []
    if not root.is_dir():
        return notes
    for path in sorted(root.iterdir()):
        if path.name.startswith(".tmp-step-"):
            shutil.rmtree(path, ignore_errors=True)
            notes.append(f"removed the unfinished checkpoint {path.name}")
        elif path.name.startswith(".old-step-"):
            target = root / path.name[len(".old-"):]
            if target.exists():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.rename(target)
                notes.append(f"restored {target.name} (its replacement was never completed)")
    return notes


def list_checkpoints(root: Path) -> list[Path]:
    """Checkpoint folders, oldest first (not yet verified: see `verify_checkpoint`)."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def verify_checkpoint(path: Path) -> dict[str, Any]:
    """The manifest of a whole checkpoint; CheckpointError naming the first file that is wrong."""
    manifest_path = path / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        files = manifest["files"]
        missing = next((name for name in REQUIRED if name not in files), None)
        if missing is not None:
            raise CheckpointError(f"checkpoint {path}: its manifest does not list {missing}")
        entries = [(name, int(e["size"]), str(e["sha256"])) for name, e in files.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise CheckpointError(f"checkpoint {path}: no readable {MANIFEST} (an unfinished or foreign save)") from None
    for name, size, digest in entries:
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint {path}: {name} is missing")
        if file.stat().st_size != size:
            raise CheckpointError(
                f"checkpoint {path}: {name} has {file.stat().st_size} bytes, the manifest says {size} (truncated)"
            )
        if _sha256(file) != digest:
            raise CheckpointError(f"checkpoint {path}: {name} does not match its sha256 in the manifest (altered)")
    return manifest


def newest_valid_checkpoint(root: Path, warn: Any = print) -> Path | None:
    """The newest checkpoint that verifies; each newer one that does not is reported with `warn`."""
    for path in reversed(list_checkpoints(root)):
        try:
            verify_checkpoint(path)
        except CheckpointError as exc:
            warn(f"warning: {exc.message}; falling back to an older checkpoint")
            continue
        return path
    return None


def load_best_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / BEST_FILE)) if (path / BEST_FILE).is_file() else {}


def load_checkpoint(
    path: Path, model: nn.Module, optimizer: Any, scheduler: Any, rank: int = 0
) -> dict[str, Any]:
    """Verify, then restore weights, optimizer, scheduler and RANK's RNG state (rank 0's for a rank the
    saving run did not have: a resume on more processes); returns state.json's content. Every rank calls
    it (a sharded model takes its shard of each tensor)."""
    verify_checkpoint(path)
    weights = load_file(str(path / "trainable.safetensors"))
    try:
        names = {name for name, _ in model.named_parameters()}
        unknown = next((name for name in weights if name not in names), None)
        if unknown is not None:  # a sharded load would skip it silently
            raise KeyError(unknown)
        load_trainable(model, weights)
        state = decode(json.loads((path / STATE_JSON).read_text()), load_file(str(path / STATE_TENSORS)))
        load_optimizer_state(model, optimizer, state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    except (KeyError, IndexError, RuntimeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not fit this model ({type(exc).__name__}: {str(exc)[:120]}); the model or "
            "method changed since it was written"
        ) from None
    ranks = [state["rng"], *state.get("rng_other_ranks", [])]
    set_rng_state(ranks[rank] if rank < len(ranks) else ranks[0])
    info: dict[str, Any] = json.loads((path / "state.json").read_text())
    if "task" in state:
        info["task_state"] = state["task"]
    return info
