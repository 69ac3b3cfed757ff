"""Sources → records: format detection, column mapping, weighted mixing and the eval split."""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tunesmith.data.formats import FORMATS, detect_format
from tunesmith.data.readers import read_rows
from tunesmith.data.records import Record
from tunesmith.sections import DataConfig, SourceConfig


@dataclass
class LoadedSource:
    path: str
    format_name: str
    records: list[Record]
    weight: float


def normalise_sources(spec: str | list[str | SourceConfig], data: DataConfig) -> list[SourceConfig]:
    """Every source as a SourceConfig, inheriting data.format / data.columns where it sets none."""
    items = [spec] if isinstance(spec, str) else spec
    sources = []
    for item in items:
        source = SourceConfig(path=item) if isinstance(item, str) else item
        updates: dict[str, object] = {}
        if source.format == "auto" and data.format != "auto":
            updates["format"] = data.format
        if not source.columns and data.columns:
            updates["columns"] = dict(data.columns)
        sources.append(source.model_copy(update=updates) if updates else source)
    return sources


def source_paths(spec: str | list[str | SourceConfig] | None, data: DataConfig) -> list[Path]:
    """The files (or folders) a data spec names (none for an unset spec)."""
    return [Path(source.path) for source in normalise_sources(spec, data)] if spec else []


def load_source(source: SourceConfig) -> LoadedSource:
    rows = read_rows(source.path)
    first_where, first_row = rows[0]
    fmt = (
        detect_format(first_row, first_where, source.columns)
        if source.format == "auto"
        else FORMATS.get(source.format)
    )
    records = [fmt.to_record(row, where, source.columns) for where, row in rows]
    return LoadedSource(source.path, fmt.name, records, source.weight)


def mix_sources(sources: list[LoadedSource], seed: int, total: int | None = None) -> list[Record]:
    """Weighted mix: a source of weight w contributes round(w × its size) records, or, with TOTAL
    (`data.num_mix_samples`), its share w × size / Σ w × size of TOTAL (largest remainders round).

    Weight 1 uses each record once, 0.5 a random half, 2.5 every record twice plus a random half.
    The choice depends only on the seed, so the mix is reproducible.
    """
    rng = random.Random(seed)
    mixed: list[Record] = []
    for source, target in zip(sources, mix_targets(sources, total), strict=True):
        whole, rest = divmod(target, len(source.records))
        mixed.extend(source.records * whole)
        mixed.extend(rng.sample(source.records, rest))
    return mixed


def mix_targets(sources: list[LoadedSource], total: int | None) -> list[int]:
    """Records drawn from each source (see `mix_sources`)."""
    wanted = [source.weight * len(source.records) for source in sources]
    if total is None:
        return [max(1, round(w)) for w in wanted]
    exact = [total * w / sum(wanted) for w in wanted]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])  # largest remainder first
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


T = TypeVar("T")


def split_eval(
    records: list[T], share: float, seed: int, stratum: Callable[[T], Hashable] | None = None
) -> tuple[list[T], list[T]]:
    """Carve a held-out share (at least one record) from train with a fixed seed; with STRATUM (e.g.
    the class label) each stratum gives the same share, so rare classes are represented in both."""
    rng = random.Random(seed)
    if stratum is None:
        order = list(range(len(records)))
        rng.shuffle(order)
        eval_ids = set(order[: max(1, round(share * len(records)))])
    else:
        groups: dict[Hashable, list[int]] = {}
        for i, record in enumerate(records):
            groups.setdefault(stratum(record), []).append(i)
        eval_ids = set()
        for key in sorted(groups, key=str):
            members = groups[key]
            rng.shuffle(members)
            # a stratum of one stays in train (it cannot be both learnt and held out)
            eval_ids.update(members[: round(share * len(members)) if len(members) > 1 else 0])
        if not eval_ids:
            largest = max(groups.values(), key=len)
            eval_ids.add(largest[0])
    train = [r for i, r in enumerate(records) if i not in eval_ids]
    held_out = [r for i, r in enumerate(records) if i in eval_ids]
    return train, held_out
