"""Load on `tunesmith serve` and the speed of `tunesmith generate`, against plain transformers.

    make bench-serve    (or: .venv/bin/python benchmarks/bench_serve.py --seconds 30 --clients 1,4,8)

1. serve: a real `tunesmith serve` process on loopback over a SmolLM2 LoRA run; for each client count N,
   N threads of the official `openai` client send streaming chat requests (greedy, --max-tokens each)
   for a bounded time. Reported: requests/s, generated tokens/s, time to first token and per-token
   latency (p50 / p99), failures, and the server's RSS after a warm-up and after each load. The baseline is the same
   prompts answered one at a time by plain `model.generate` on the same run in this process.
2. generate: `tunesmith generate`'s batched path vs a per-prompt `model.generate` loop, same prompts.
Ratios > 1 mean tunesmith is faster. A run is trained first (4 LoRA steps) unless --run is given.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEMO = ROOT / "examples" / "demo"


def prompts() -> list[str]:
    rows = [json.loads(line) for line in (DEMO / "eval.jsonl").read_text().splitlines()]
    return [r["instruction"] for r in rows]


def quick_run(root: Path) -> Path:
    from tunesmith import train

    config = {
        "model": {"path": "smollm2-135m-instruct"},
        "data": {"train": str(DEMO / "train.jsonl"), "eval": str(DEMO / "eval.jsonl"), "max_length": 256,
                 "checks": "warn"},
        "method": {"name": "lora", "r": 16, "alpha": 32, "dropout": 0.0},
        "train": {"max_steps": 4, "batch_size": 4, "lr": 1e-3, "warmup_steps": 0},
        "eval": {"num_samples": 0, "memorization": {"samples": 0}, "forgetting": False},
        "output": {"dir": str(root), "name": "bench-serve"},
    }
    return train(config, quiet=True).run_dir


def rss_mb(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss / 2**20)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def load(
    base_url: str, model: str, clients: int, seconds: float, max_tokens: int, texts: list[str]
) -> dict[str, Any]:
    import openai

    api = openai.OpenAI(base_url=f"{base_url}/v1", api_key="-", max_retries=0, timeout=300)
    stop_at = time.perf_counter() + seconds
    results: list[dict[str, float]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        n = index
        while time.perf_counter() < stop_at:
            text = texts[n % len(texts)]
            n += clients
            started = time.perf_counter()
            first = last = None
            tokens = 0
            try:
                stream = api.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": text}], max_tokens=max_tokens,
                    temperature=0, stream=True, stream_options={"include_usage": True},
                )
                for chunk in stream:
                    now = time.perf_counter()
                    if chunk.choices and chunk.choices[0].delta.content:
                        first = first or now
                        last = now
                    if chunk.usage is not None:
                        tokens = chunk.usage.completion_tokens
            except Exception as exc:  # a failure is counted, never hidden
                with lock:
                    failures.append(f"{type(exc).__name__}: {exc}")
                continue
            ended = time.perf_counter()
            per_token = (last - first) / (tokens - 1) if first and last and tokens > 1 else float("nan")
            with lock:
                results.append({"ttft": (first or ended) - started, "per_token": per_token, "tokens": tokens,
                                "ended": ended})

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    per_token = [r["per_token"] for r in results if r["per_token"] == r["per_token"]]
    return {
        "clients": clients,
        "requests": len(results),
        "failures": len(failures),
        "failure_examples": failures[:3],
        "requests_per_s": len(results) / wall,
        "tokens_per_s": sum(r["tokens"] for r in results) / wall,
        "ttft_p50_s": percentile([r["ttft"] for r in results], 0.5),
        "ttft_p99_s": percentile([r["ttft"] for r in results], 0.99),
        "per_token_p50_ms": 1000 * percentile(per_token, 0.5),
        "per_token_p99_ms": 1000 * percentile(per_token, 0.99),
    }


def serial_baseline(run: Path, texts: list[str], max_tokens: int) -> dict[str, float]:
    """The same prompts one at a time through plain `model.generate` on the same run."""
    import torch

    from tunesmith.data.records import Message
    from tunesmith.serve.target import load_served

    target = load_served(str(run))
    ids = [target.chat_ids([Message("user", t)]) for t in texts]
    started, tokens = time.perf_counter(), 0
    with torch.no_grad():
        for prompt in ids:
            out = target.model.generate(torch.tensor([prompt]), max_new_tokens=max_tokens, do_sample=False,
                                        eos_token_id=target.stop_ids, pad_token_id=target.tokenizer.pad_token_id)
            tokens += out.shape[1] - len(prompt)
    seconds = time.perf_counter() - started
    return {"requests_per_s": len(ids) / seconds, "tokens_per_s": tokens / seconds, "seconds": seconds}


def generate_comparison(run: Path, texts: list[str], max_tokens: int, work: Path) -> dict[str, float]:
    from tunesmith.inference.sampling import Sampling
    from tunesmith.serve.batch import generate_file
    from tunesmith.serve.target import load_served

    data = work / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    target = load_served(str(run))
    stats = generate_file(target, data, work / "answers.jsonl", Sampling(max_new_tokens=max_tokens), batch_size=8)
    plain = serial_baseline(run, texts, max_tokens)
    return {"tunesmith_tokens_per_s": stats.tokens_per_second, "plain_tokens_per_s": plain["tokens_per_s"],
            "ratio": stats.tokens_per_second / plain["tokens_per_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="a SmolLM2 run folder (default: train a 4-step LoRA run)")
    parser.add_argument("--seconds", type=float, default=30.0, help="load time per client count")
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    from tests.serve.conftest import ServerProcess, free_port

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = args.run or quick_run(work / "runs")
        texts = prompts()
        server = ServerProcess([str(run), "--max-batch", "8", "--max-queue", "64"], free_port())
        try:
            load(server.base_url, run.name, 8, 5.0, args.max_tokens, texts)  # warm-up: weights paged in
            start_rss = rss_mb(server.proc.pid)
            loads = []
            for n in args.clients.split(","):
                loads.append(load(server.base_url, run.name, int(n), args.seconds, args.max_tokens, texts))
                loads[-1]["rss_mb_after"] = rss_mb(server.proc.pid)
            end_rss = rss_mb(server.proc.pid)
        finally:
            server.stop()
        serial = serial_baseline(run, texts[:8], args.max_tokens)
        generate = generate_comparison(run, texts[:16], args.max_tokens, work)
    print(f"plain transformers, one request at a time: {serial['requests_per_s']:.2f} req/s, "
          f"{serial['tokens_per_s']:.1f} tokens/s")
    print("| clients | req/s | tokens/s | vs serial | TTFT p50 / p99 s | per-token p50 / p99 ms | failures |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for row in loads:
        print(f"| {row['clients']} | {row['requests_per_s']:.2f} | {row['tokens_per_s']:.1f} | "
              f"{row['tokens_per_s'] / serial['tokens_per_s']:.2f}x | {row['ttft_p50_s']:.2f} / {row['ttft_p99_s']:.2f} | "
              f"{row['per_token_p50_ms']:.0f} / {row['per_token_p99_ms']:.0f} | {row['failures']} |")
    after_each = ", ".join(f"{row['rss_mb_after']:.0f}" for row in loads)
    print(f"server RSS after warm-up: {start_rss:.0f} MB; after each load: {after_each} MB; at the end {end_rss:.0f} MB")
    print(f"generate: {generate['tunesmith_tokens_per_s']:.1f} tokens/s (batched) vs "
          f"{generate['plain_tokens_per_s']:.1f} (plain per-prompt generate): {generate['ratio']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"serial": serial, "load": loads, "rss_mb": [start_rss, end_rss],
                                         "generate": generate}, indent=2))
    if any(row["failures"] for row in loads):
        sys.exit(1)


if __name__ == "__main__":
    main()
