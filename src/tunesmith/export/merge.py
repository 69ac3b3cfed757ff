"""`tunesmith export RUN --out DIR [--merge]`: a plain transformers folder from a run.

With --merge, methods whose update is a change of the existing weights (LoRA, DoRA, IA3, freeze,
full) are folded in, giving a model any transformers user can load. Methods that add computation
(bottleneck adapters, prefixes, soft prompts) cannot be folded; then, as without --merge, the export
holds the base model and the method's files in `DIR/method/`. Reads only the run folder.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tunesmith.errors import UserError
from tunesmith.models.tuned import load_base, read_run

METHOD_SUBFOLDER = "method"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    merged: bool
    note: str  # one line for the user


def export_model(
    run_dir: str | Path, out_dir: str | Path, merge: bool = True, overwrite: bool = False
) -> ExportResult:
    run = read_run(run_dir)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(
            f"--out {out} already exists and is not empty; choose another folder or pass --overwrite"
        )
    method = run.method
    _, base, tokenizer = load_base(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if merge and method.mergeable:
            method.merge(method.load_trained(base, run.final)).save_pretrained(tmp)
            note = f"merged model ({method.name} folded into the weights): {out}"
        else:
            base.save_pretrained(tmp)
            shutil.copytree(run.final, tmp / METHOD_SUBFOLDER)
            why = (
                f"method {method.name} cannot be merged into the weights (it adds computation to the model); "
                if merge
                else ""
            )
            note = f"{why}exported the base model to {out} and the {method.name} files to {out / METHOD_SUBFOLDER}"
        tokenizer.save_pretrained(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return ExportResult(out, merge and method.mergeable, note)


def export_merged(run_dir: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Merged export (kept for the foundation API)."""
    return export_model(run_dir, out_dir, merge=True, overwrite=overwrite).path
