"""`tunesmith export RUN --merge --out DIR`: a plain transformers folder from a run.

Reads only the run folder (its resolved config and `final/`), never the training loop.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tunesmith.config import load_config
from tunesmith.errors import UserError
from tunesmith.methods import METHODS
from tunesmith.models.load import load_causal_lm, load_tokenizer, resolve_model
from tunesmith.runs.folder import RunFolder


def export_merged(run_dir: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    run = RunFolder(Path(run_dir))
    out = Path(out_dir)
    if not run.config.is_file():
        raise UserError(f"{run.path} is not a run folder (no config.yaml)")
    if not run.final.is_dir():
        raise UserError(f"{run.path} has no final/ model yet; the run did not finish")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(
            f"--out {out} already exists and is not empty; choose another folder or pass --overwrite"
        )
    cfg = load_config(run.config)
    method = METHODS.get(cfg.method.name)
    source = resolve_model(cfg.model)
    base = load_causal_lm(source, cfg.model)
    merged = method.merge(method.load_trained(base, run.final))
    tokenizer = load_tokenizer(source, cfg.model)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    merged.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
