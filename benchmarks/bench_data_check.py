"""`tunesmith data check` throughput on a generated data set, against reading the same file with pandas
(the floor any checker pays to look at every record).

    make bench-data     (or: .venv/bin/python benchmarks/bench_data_check.py --records 100000)

Prints records/s of the checks without the tokenizer and language ones (target ≥ 5,000 rec/s),
the language check on its own, the whole run, and peak memory (RSS) at two file sizes, so growth with
the file size is visible.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ["card", "payment", "refund", "account", "transfer", "limit", "fraud", "alert"]
WORDS += ["branch", "loan", "savings", "deposit", "fee", "balance", "app"]


def make_file(path: Path, records: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w") as handle:
        for i in range(records):
            question = " ".join(rng.choice(WORDS) for _ in range(12)) + f" #{i}"
            answer = " ".join(rng.choice(WORDS) for _ in range(25))
            if i % 97 == 0:
                answer += f" mail me at user{i}@example.com"
            handle.write(json.dumps({"instruction": question, "output": answer}) + "\n")


def measure(path: Path, records: int) -> dict[str, float]:
    from tunesmith.data.quality.checks import CheckOptions, run_checks

    started = time.perf_counter()
    run_checks(path, None, None, None, CheckOptions())
    whole = time.perf_counter() - started
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    run_checks(path, None, None, None, CheckOptions(languages=False))
    core = time.perf_counter() - started
    return {
        "records": records,
        "core_records_per_s": records / core,
        "language_records_per_s": records / max(whole - core, 1e-9),
        "total_s": whole,
        "peak_rss_mb": peak_rss_mb,
    }


def pandas_read(path: Path) -> float:
    import pandas as pd

    started = time.perf_counter()
    pd.read_json(path, lines=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.records)))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (args.records // 4, args.records):
            path = Path(tmp) / f"data-{size}.jsonl"
            make_file(path, size)
            proc = subprocess.run(
                [sys.executable, __file__, "--one", str(path), "--records", str(size)],
                capture_output=True,
                text=True,
                check=True,
            )
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            try:
                results[-1]["pandas_read_s"] = pandas_read(path)
            except ImportError:
                results[-1]["pandas_read_s"] = float("nan")
    print(
        "| records | core checks rec/s | language rec/s | whole check s | pandas read s | ratio | peak RSS MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        ratio = r["total_s"] / r["pandas_read_s"]
        print(
            f"| {r['records']:,} | {r['core_records_per_s']:,.0f} | {r['language_records_per_s']:,.0f} | {r['total_s']:.1f} "
            f"| {r['pandas_read_s']:.2f} | {ratio:.1f}× | {r['peak_rss_mb']:,.0f} |"
        )


if __name__ == "__main__":
    main()
