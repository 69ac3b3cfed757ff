"""The issue's "done when" on the real SmolLM2-135M-Instruct: two LoRA runs (the demo's fraud-flag bank
and the brand-tone rewriter) served at once to the `openai` client, a bounded queue that refuses instead of
hanging, hung-up streams that free their slot, generation over a file, a scripted chat, and a GGUF export
that llama.cpp runs with the trained model's greedy answers, stopping at the end-of-turn token.
Slow (several minutes on 2 cores); runs in CI too."""

from __future__ import annotations

import concurrent.futures as futures
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.serve.conftest import ServerProcess, free_port
from tunesmith import train
from tunesmith.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def smol_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("smol-runs")
    runs = {}
    for name, example in (("fraud", "demo"), ("tone", "brand_tone")):
        config = {
            "model": {"path": "smollm2-135m-instruct"},
            "data": {"train": str(EXAMPLES / example / "train.jsonl"), "eval": str(EXAMPLES / example / "eval.jsonl"),
                     "max_length": 256, "checks": "warn"},
            "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
            "train": {"max_steps": 6, "batch_size": 4, "lr": 2e-3, "warmup_steps": 0},
            "eval": {"num_samples": 0, "memorization": {"samples": 0}, "forgetting": False},
            "output": {"dir": str(root / "runs"), "name": name},
        }
        runs[name] = train(config, quiet=True).run_dir
    return runs


@pytest.mark.slow
def test_two_adapters_served_to_the_openai_client(smol_runs: dict[str, Path]) -> None:
    server = ServerProcess([str(smol_runs["fraud"]), "--adapter", f"tone={smol_runs['tone']}",
                            "--max-queue", "8", "--max-batch", "4"], free_port())
    try:
        api = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="-", max_retries=0, timeout=120)
        assert [m.id for m in api.models.list().data] == ["fraud", "tone", "smollm2-135m-instruct"]
        questions = {
            "fraud": "I got a fraud warning for a fuel station in Poland, 4999 EUR. Why?",
            "tone": "Rewrite this message in the Northwind Outfitters voice.\n\nYour order has been shipped.",
        }

        def ask(model: str) -> str:
            stream = api.chat.completions.create(model=model, messages=[{"role": "user", "content": questions[model]}],
                                                 max_tokens=48, temperature=0, stream=True)
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        alone = {model: ask(model) for model in questions}
        with futures.ThreadPoolExecutor(4) as pool:
            together = list(pool.map(ask, ["fraud", "tone", "fraud", "tone"]))
        assert together == [alone["fraud"], alone["tone"]] * 2  # no adapter leaks into the other's answer
        assert alone["fraud"] != alone["tone"]
    finally:
        server.stop()


@pytest.mark.slow
def test_full_queue_refuses_and_hung_up_streams_free_their_slots(smol_runs: dict[str, Path]) -> None:
    server = ServerProcess([str(smol_runs["fraud"]), "--max-queue", "2", "--max-batch", "1"], free_port())
    body = {"model": "fraud", "messages": [{"role": "user", "content": "Tell me a very long story."}],
            "max_tokens": 400, "temperature": 0.8, "seed": 1, "stream": True}
    try:
        with httpx.Client(timeout=120) as http:
            streams = [http.stream("POST", f"{server.base_url}/v1/chat/completions", json=body) for _ in range(2)]
            opened = [s.__enter__() for s in streams]
            assert next(opened[0].iter_lines()).startswith("data: ")
            refused = http.post(f"{server.base_url}/v1/chat/completions", json={**body, "stream": False})
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "queue_full"
            for stream in streams:
                stream.__exit__(None, None, None)  # both clients hang up mid-answer
        deadline = time.time() + 20  # 800 tokens would take far longer than this on 2 cores
        while httpx.get(f"{server.base_url}/health").json()["in_flight"] and time.time() < deadline:
            time.sleep(0.2)
        assert httpx.get(f"{server.base_url}/health").json()["in_flight"] == 0
        reply = httpx.post(f"{server.base_url}/v1/chat/completions",
                           json={**body, "stream": False, "max_tokens": 8}, timeout=60)
        assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] <= 8
    finally:
        server.stop()


@pytest.mark.slow
def test_generate_chat_and_verified_exports(smol_runs: dict[str, Path], tmp_path: Path) -> None:
    run = smol_runs["fraud"]
    out = tmp_path / "answers.jsonl"
    main(["generate", str(run), "--data", str(EXAMPLES / "demo" / "eval.jsonl"), "--out", str(out),
          "--max-new-tokens", "64"])  # the demo's answers run to ~45 tokens
    answers = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(answers) == len((EXAMPLES / "demo" / "eval.jsonl").read_text().splitlines())
    assert sum(a["finish_reason"] == "stop" for a in answers) >= len(answers) // 2  # the tuned model stops
    chat = subprocess.run([sys.executable, "-m", "tunesmith", "chat", str(run), "--max-new-tokens", "40"],
                          input=f"{answers[0]['messages'][0]['content'] if 'messages' in answers[0] else 'Hi'}\n"
                          "/compare\n/quit\n", capture_output=True, text=True, timeout=300)
    assert chat.returncode == 0 and "smollm2-135m-instruct" in chat.stdout and "fraud>" in chat.stdout

    gguf = tmp_path / "ollama" / "fraud.gguf"
    main(["export", str(run), "--format", "gguf", "--quant", "f16", "--out", str(gguf)])
    report = json.loads((gguf.parent / "export.json").read_text())
    cpp = report["agreement"]["llama.cpp"]
    assert cpp["argmax_agreement"] >= 0.98 and cpp["tokenizer_match"] == 1.0 and cpp["chat_template_match"]
    assert cpp["greedy_match_rate"] >= 0.75 and cpp["stopped_at_end_of_turn"] == 1.0
    assert report["modelfile_template_verified"] is True
    merged = tmp_path / "merged"
    main(["export", str(run), "--merge", "--out", str(merged)])
    assert json.loads((merged / "export.json").read_text())["agreement"]["transformers"]["greedy_match_rate"] == 1.0
