"""`tunesmith export RUN --merge --out DIR` (the same as `--format hf`): kept as the foundation API.

With --merge, methods whose update is a change of the existing weights (LoRA, DoRA, IA3, freeze,
full) are folded in, giving a model any transformers user can load. Methods that add computation
(bottleneck adapters, prefixes, soft prompts) cannot be folded; then, as without --merge, the export
holds the base model and the method's files in `DIR/method/`. The work is `exporter.export_run`.
"""

from __future__ import annotations

from pathlib import Path

from tunesmith.export.exporter import METHOD_SUBFOLDER, ExportResult, export_run

__all__ = ["METHOD_SUBFOLDER", "ExportResult", "export_merged", "export_model"]


def export_model(
    run_dir: str | Path, out_dir: str | Path, merge: bool = True, overwrite: bool = False
) -> ExportResult:
    return export_run(run_dir, out_dir, "hf", None, overwrite, merge)


def export_merged(run_dir: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Merged export (kept for the foundation API)."""
    return export_model(run_dir, out_dir, merge=True, overwrite=overwrite).path
