"""tunesmith: fine-tune pretrained language models on your own domain data.

Public API: `train(config)`, `load_config(path_or_dict)`, `export_merged(run_dir, out_dir)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from tunesmith.pipeline import TrainResult


def train(config: Any, overrides: list[str] | None = None, **kwargs: Any) -> TrainResult:
    """Fine-tune from a YAML path, a dict or a RunConfig; returns metrics and paths."""
    from tunesmith.pipeline import train as _train

    return _train(config, overrides, **kwargs)


def load_config(source: Any, overrides: list[str] | None = None) -> Any:
    from tunesmith.config import load_config as _load

    return _load(source, overrides)


def export_merged(run_dir: Any, out_dir: Any, overwrite: bool = False) -> Any:
    from tunesmith.export.merge import export_merged as _export

    return _export(run_dir, out_dir, overwrite)


__all__ = ["__version__", "export_merged", "load_config", "train"]
