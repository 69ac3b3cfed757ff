"""report.html is drawn in a real headless Chromium: its charts have visible curves with the right
series, the page loads nothing from the network, and bad run folders give one line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tunesmith import train
from tunesmith.cli import main

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), (
        "Chromium is needed for the report tests: `make dev` installs it (apt chromium)"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def drawn_charts(browser: Any, report: Path) -> tuple[dict[str, list[dict[str, Any]]], list[str], str]:
    """({chart title: [{series, points, width, height}]}, URLs requested, page text)."""
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.as_uri())
    charts = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.chart')].map(chart => [
            chart.querySelector('h3').textContent,
            [...chart.querySelectorAll('polyline.series, rect.bar')].map(el => {
                const box = el.getBoundingClientRect();
                return {series: el.dataset.series || el.textContent, points: Number(el.dataset.points || 1),
                        width: box.width, height: box.height};
            })]))"""
    )
    text = page.inner_text("body")
    page.close()
    return charts, requests, text


def test_run_report_draws_its_charts(
    make_config: Callable[..., dict[str, Any]], browser: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    result = train(
        make_config(train={"max_steps": 6}, eval={"every_steps": 2, "num_samples": 1}, output={"name": "a"}),
        quiet=True,
    )
    report = result.run_dir / "report.html"  # written at the end of the run
    charts, requests, text = drawn_charts(browser, report)
    assert requests == [report.as_uri()]  # self-contained: nothing else is fetched
    loss = {c["series"]: c for c in charts["loss"]}
    assert set(loss) == {"train loss", "train loss (smoothed)", "eval loss"}
    assert loss["train loss"]["points"] == 6 and loss["eval loss"]["points"] == 4  # steps 0, 2, 4, 6
    for title in ("learning rate", "gradient norm (before clipping)", "throughput", "memory (MB)"):
        assert charts[title] and all(c["width"] > 50 for c in charts[title]), title
    assert charts["generalization gap (eval − smoothed train loss)"][0]["points"] >= 3
    assert charts["verbatim completion rate"]  # the memorization probe's bars
    for section in (
        "Overfitting watch",
        "Memorization probe",
        "Forgetting watch",
        "Eval metrics",
        "Data statistics",
    ):
        assert section in text, section
    assert "Sample generations, before vs after" in text

    other = train(make_config(train={"max_steps": 3}, output={"name": "b"}), quiet=True)
    out = result.run_dir.parent / "ab.html"
    main(["report", str(result.run_dir), str(other.run_dir), "--out", str(out)])
    charts, _, text = drawn_charts(browser, out)
    assert {c["series"]: c["points"] for c in charts["train loss"]} == {"a": 6, "b": 3}
    assert all(c["width"] > 50 for c in charts["train loss"])


def test_reports_of_broken_runs(tmp_path: Path, browser: Any, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as stop:
        main(["report", str(empty)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {empty} is not a run folder: it has no config.yaml, metrics.jsonl or summary.json"
    crashed = tmp_path / "crashed"  # a run that failed before its first step
    crashed.mkdir()
    (crashed / "config.yaml").write_text("model: {path: x}\n")
    (crashed / "summary.json").write_text(json.dumps({"status": "failed", "wall_s": 1.0}))
    (crashed / "metrics.jsonl").write_text(
        '{"step": 0, "eval_loss": 2.0}\n{"step": 1, "lo'
    )  # killed mid-line
    main(["report", str(crashed)])
    captured = capsys.readouterr()
    assert "no training step was recorded (status: failed)" in captured.err
    assert "1 unreadable lines in metrics.jsonl were skipped" in captured.err
    charts, _, text = drawn_charts(browser, crashed / "report.html")
    assert "status failed before its first training step" in text
    assert charts["loss"][0]["series"] == "eval loss"


def test_every_value_reaching_the_report_is_escaped(tmp_path: Path) -> None:
    """A run folder from someone else cannot put markup into the report (the last step, memorization counts)."""
    from tunesmith.runs.report import write_report

    run = tmp_path / "hostile"
    run.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "examples" / "demo" / "config.yaml", run / "config.yaml")
    evil = "<script>alert(1)</script>"
    (run / "metrics.jsonl").write_text(json.dumps({"step": evil, "loss": 1.0}) + "\n")
    memo = {"train_verbatim_rate": 0.5, "heldout_verbatim_rate": 0.1, "train_token_loss": 1.0,
            "heldout_token_loss": 2.0, "train_samples": evil, "heldout_samples": evil, "message": evil}
    (run / "summary.json").write_text(json.dumps({"status": "failed", "memorization": memo}))
    path, _ = write_report([run], tmp_path / "r.html")
    html_text = path.read_text()
    assert "<script>" not in html_text and "&lt;script&gt;" in html_text
