"""Evaluation's per-item work shared between the ranks of a job (`distributed.shared_map`), on 2 gloo
processes: each rank computes only every second item, and every rank gets all results in order."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch.multiprocessing as mp

pytestmark = pytest.mark.slow  # two processes that import torch


def _rank(rank: int, store: str, out: str) -> None:
    import torch.distributed as dist

    from tunesmith.engine.distributed import shared_map

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    seen: list[int] = []

    def work(part: list[int]) -> list[str]:
        seen.extend(part)
        return [f"{x}^2={x * x}" for x in part]

    results = shared_map(work, list(range(7)))
    empty = shared_map(work, [])
    one = shared_map(work, [5])  # fewer items than ranks: rank 1 computes nothing
    Path(out, f"{rank}.json").write_text(json.dumps({"results": results, "empty": empty, "one": one, "seen": seen}))
    dist.destroy_process_group()


def test_each_rank_computes_its_share_and_all_get_everything(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_rank, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1)]
    for found in ranks:
        assert found["results"] == [f"{x}^2={x * x}" for x in range(7)]
        assert found["empty"] == [] and found["one"] == ["5^2=25"]
    assert ranks[0]["seen"] == [0, 2, 4, 6, 5] and ranks[1]["seen"] == [1, 3, 5]
