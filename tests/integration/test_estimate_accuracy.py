"""`tunesmith estimate` against real runs of SmolLM2-135M-Instruct on this machine: the table of
benchmarks/bench_estimate.py (eight configurations: full, LoRA, adapter, prompt; two sequence lengths;
with and without gradient checkpointing), each trained in its own process for three steps, its summary
holding the estimate made before training beside the measurement."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_estimate.py"
MEMORY_TOLERANCE = 0.20
# without packing the estimate is the peak of the run's widest micro-batch, which three measured steps need
# not meet (on the demo's data, lengths 133-175 tokens: +21%); an over-estimate there may reach +30%
UNPACKED_OVER_TOLERANCE = 0.30
# time is a benchmark's business (`make bench-estimate` prints the errors; README has the numbers), not a
# timed test's: three steps on a shared 2-core machine vary too much (full-256 measured -22% and -44% here,
# -53% on CI's machine). The test holds the estimate to a sanity band that catches a broken time model (a
# unit slip, a missing term), a factor of 3 either way
TIME_BAND = (1 / 3 - 1, 3 - 1)


@pytest.mark.slow
def test_estimates_hold_on_real_runs() -> None:
    spec = importlib.util.spec_from_file_location("bench_estimate", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench.measure(name, 3, Path(tmp)) for name in bench.CONFIGS]
    print("\n" + bench.table(rows))
    memory_misses = [r["config"] for r in rows if not _memory_holds(r)]
    time_misses = [r["config"] for r in rows if not TIME_BAND[0] <= r["time_error"] <= TIME_BAND[1]]
    assert not memory_misses, bench.table(rows)
    assert not time_misses, bench.table(rows)


def _memory_holds(row: dict[str, object]) -> bool:
    error = float(row["memory_error"])  # type: ignore[arg-type]
    if "unpacked" in str(row["config"]) and error > 0:
        return error <= UNPACKED_OVER_TOLERANCE
    return abs(error) <= MEMORY_TOLERANCE
