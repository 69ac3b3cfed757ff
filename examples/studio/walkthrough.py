"""The studio, walked through in a real browser on the real model (SmolLM2-135M-Instruct), as a person
would use it with the demo's data (a bank's fraud assistant, examples/demo): check the data, fill the
new-run form and read its estimate, start the run and watch its curves, compare the tuned model with its
base in the playground, and label answers on the feedback page. Saves a screenshot of every page.

    python examples/studio/walkthrough.py [--runs DIR] [--shots docs/images] [--steps 20]

Needs `make dev` (Playwright, and Debian's Chromium). About 10 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shoot(page: Page, shots: Path, name: str, full: bool = False) -> None:
    page.screenshot(path=str(shots / f"studio-{name}.png"), full_page=full)
    print(f"  screenshot: {shots / f'studio-{name}.png'}", flush=True)


def new_run(page: Page, url: str, name: str, steps: int) -> None:
    page.goto(f"{url}/new")
    page.fill("[name='output.name']", name)
    page.select_option("[name='data.train']", "train.jsonl")
    for section in ("data", "eval"):
        page.click(f"details[data-section='{section}'] > summary")
    page.select_option("[name='data.eval']", "eval.jsonl")
    page.select_option("[name='task.name']", "generation")
    page.fill("[data-variant='task:generation'] [name='task.score_fields']", '["Flag", "Next step"]')
    values = {"data.max_length": "512", "train.max_steps": str(steps), "train.batch_size": "4", "train.grad_accum": "2",
              "train.lr": "0.002", "train.warmup_steps": "3", "eval.every_steps": str(max(1, steps // 2)),
              "eval.max_new_tokens": "64", "eval.stop": '["\\n"]', "eval.batch_size": "25", "eval.num_samples": "2"}
    for key, value in values.items():
        page.fill(f"[name='{key}']", value)
    page.fill("[data-variant='method:lora'] [name='method.target_modules']", "all-linear")
    print("  waiting for the estimate (it probes the model: about 20 s)", flush=True)
    page.wait_for_function("document.querySelector('#est-fits') !== null", timeout=300_000)
    page.evaluate("window.scrollTo(0, 0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=None, help="output root (default: a temporary folder)")
    parser.add_argument("--shots", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    runs = args.runs or Path(tempfile.mkdtemp(prefix="studio-")) / "runs"
    args.shots.mkdir(parents=True, exist_ok=True)
    port, name = free_port(), "fraud-assistant"
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "tunesmith", "ui", "--port", str(port), "--runs", str(runs),
                               "--data", str(DEMO)], env={**os.environ})
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            for _ in range(300):
                try:
                    page.goto(url)
                    break
                except Exception:
                    time.sleep(0.2)
            print("1. data check", flush=True)
            page.goto(f"{url}/data")
            page.locator("tr[data-file='train.jsonl'] button.check").click()
            page.wait_for_function("document.querySelector('#result-title').textContent.includes('records')",
                                   timeout=300_000)
            shoot(page, args.shots, "data")
            print("2. new run from the form", flush=True)
            new_run(page, url, name, args.steps)
            shoot(page, args.shots, "new-run")
            page.click("#start")
            page.wait_for_url(f"{url}/runs/{name}")
            print("3. training (watch the curves)", flush=True)
            page.wait_for_function("document.querySelectorAll('#charts polyline.series').length > 0", timeout=900_000)
            page.wait_for_function("document.querySelector('#status').textContent === 'finished'", timeout=3_600_000)
            page.wait_for_load_state()
            shoot(page, args.shots, "run")
            page.goto(url)
            shoot(page, args.shots, "runs")
            print("4. playground: tuned vs base", flush=True)
            question = json.loads((DEMO / "eval.jsonl").read_text().splitlines()[0])
            prompt = question.get("prompt") or question.get("instruction") or question["messages"][0]["content"]
            page.goto(f"{url}/playground?run={name}")
            page.fill("#prompt", prompt)
            page.fill("#max_tokens", "64")
            page.click("#send")
            page.wait_for_function("document.querySelectorAll('.answer[data-done]').length === 2", timeout=600_000)
            shoot(page, args.shots, "playground")
            print("5. feedback: label three pairs", flush=True)
            page.goto(f"{url}/feedback")
            page.select_option("#prompts", "eval.jsonl")
            page.select_option("#model_a", f"run:{name}")
            page.select_option("#model_b", f"base:{name}")
            page.fill("#annotator", "analyst")
            page.fill("#session", "fraud-review")
            page.click("#setup button[type=submit]")
            for done in range(3):
                page.wait_for_selector(f'#labelling[data-ready="1"][data-mine="{done}"]', timeout=600_000)
                if done == 1:
                    shoot(page, args.shots, "feedback")
                first = page.text_content("#first .answer-text") or ""
                page.keyboard.press("1" if "Flag:" in first else "2")
            browser.close()
        summary = json.loads((runs / name / "summary.json").read_text())
        print(f"task_score before {summary['eval_before'].get('task_score')} → after "
              f"{summary['eval_after'].get('task_score')}; eval loss {summary['eval_loss_before']:.3f} → "
              f"{summary['eval_loss_after']:.3f}; {summary['train_s']:.0f} s of training; runs in {runs}")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
