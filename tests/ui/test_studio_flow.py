"""From a data file to a trained, compared model without a terminal, in headless Chromium against the
studio on loopback: upload and check data, save a cleaned copy, fill the new-run form (a bad value is
shown beside its field; the estimate appears), start the run, watch its curve grow, stop it (checkpoint,
`interrupted`), resume it to the end, open its report, then ask the tuned run and its base side by side."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_jsonl
from tests.ui.conftest import running_studio, screenshot

pytestmark = pytest.mark.slow

STEPS = 600


def chart_points(page: Any) -> int:
    return int(page.evaluate(
        "() => Math.max(0, ...[...document.querySelectorAll('#charts polyline.series')]"
        ".map(p => Number(p.dataset.points || 0)))"))


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_data_to_trained_and_compared_model(browser: Any, tiny_llama: Path, tiny_runs: dict[str, Path],
                                           tmp_path: Path) -> None:
    runs = tiny_runs["yes"].parent
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"prompt": f"Question {i}: what is {i} plus {i}?", "completion": f"{i} plus {i} is {2 * i}."}
            for i in range(24)]
    upload = write_jsonl(tmp_path / "sums.jsonl", rows + rows[:4])  # four exact duplicates to clean
    with running_studio(runs, data, models=[tiny_llama]) as (url, _):
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))

        # data: upload, check, report, cleaned copy
        page.goto(f"{url}/data")
        page.set_input_files("#file", str(upload))
        page.click("#upload")
        page.wait_for_function("document.querySelector('#result-title').textContent.includes('records')")
        assert "28 records" in page.inner_text("#result-title")
        assert "duplicate" in page.inner_text("#findings")
        assert "data check" in page.frame_locator("#report").locator("h1").inner_text()
        page.click("#fix")
        page.wait_for_function("document.querySelector('#fix-message').textContent.includes('kept')")
        assert "uploads/sums-clean.jsonl (24 kept, 4 removed" in page.inner_text("#fix-message")
        screenshot(page, "data")

        # new run: a bad value is refused beside its field, then the estimate shows
        page.goto(f"{url}/new")
        page.fill("[name='output.name']", "sums")
        page.select_option("[name='data.train']", "uploads/sums-clean.jsonl")
        page.fill("[name='model.path']", str(tiny_llama))
        for section in ("data", "eval"):  # folded by default, as a person would open them
            page.click(f"details[data-section='{section}'] > summary")
        for key, value in {"data.max_length": "64", "train.max_steps": str(STEPS), "train.batch_size": "4",
                           "train.lr": "-1", "eval.num_samples": "0"}.items():
            page.fill(f"[name='{key}']", value)
        page.select_option("[name='train.mixed_precision']", "no")
        page.select_option("[name='eval.forgetting']", "false")
        page.fill("[data-variant='method:lora'] [name='method.r']", "4")
        error = page.locator(".field[data-key='train.lr'] .error")
        error.wait_for(state="visible")
        page.wait_for_function("document.querySelector(\".field[data-key='train.lr'] .error\").textContent.length > 0")
        assert "greater than 0" in error.inner_text()
        page.fill("[name='train.lr']", "0.01")
        page.wait_for_function("document.querySelector('#est-fits') !== null", timeout=120_000)
        assert page.inner_text("#est-fits") == "fits this machine"
        assert page.locator(".field.invalid").count() == 0
        screenshot(page, "new-run")
        page.click("#start")
        page.wait_for_url(f"{url}/runs/sums")

        # the curve grows while it trains; stop saves a checkpoint; resume finishes it
        first = wait_for(lambda: chart_points(page), 180, "the first logged steps")
        wait_for(lambda: chart_points(page) > first, 60, "the curve to grow")
        screenshot(page, "run-training")
        with page.expect_navigation(timeout=120_000):  # the page reloads once the run has ended
            page.click("#stop")
            # a second stop (an impatient click) must not kill the run before its checkpoint
            again = page.evaluate("api('/api/stop/sums', {}).then(r => r.status, e => e.message)")
            assert again in ("stopping", "run sums is not training in this studio"), again
        assert page.inner_text("#status") == "interrupted"
        stopped_at = chart_points(page)
        assert stopped_at < STEPS
        assert any((runs / "sums" / "checkpoints").glob("step-*"))
        with page.expect_navigation(timeout=300_000):
            page.click("#resume")
        assert page.inner_text("#status") == "finished"
        summary = json.loads((runs / "sums" / "summary.json").read_text())
        assert summary["steps"] == STEPS and summary["eval_loss_after"] < summary["eval_loss_before"]
        assert "Estimate vs measured" in page.inner_text("main")
        screenshot(page, "run-finished")
        page.goto(f"{url}/report/sums")
        assert page.locator(".chart").count() >= 3 and "tunesmith run sums" in page.title()

        # the new run is in the table, and overlays with another
        page.goto(f"{url}/")
        assert page.locator("#runs-table tbody tr").count() >= 3
        screenshot(page, "runs")
        page.check("input.pick[value='sums']")
        page.check("input.pick[value='yes']")
        page.click("#overlay")
        page.wait_for_url(f"{url}/compare?run=sums&run=yes")
        assert page.locator(".chart").count() >= 2
        screenshot(page, "compare")

        # playground: the tuned run and its base answer side by side, streamed
        page.goto(f"{url}/playground?run=yes")
        page.fill("#prompt", "Say something.")
        page.click("#send")
        page.wait_for_function("document.querySelectorAll('.answer[data-done]').length === 2", timeout=120_000)
        answers = {a.get_attribute("data-model"): a.inner_text() for a in page.locator(".answer").all()}
        assert "Yes, certainly." in answers["run:yes"]
        assert "Yes, certainly." not in answers["base:yes"]
        screenshot(page, "playground")
        page.close()
        assert requested and all(u.startswith(url) for u in requested), "every asset comes from the studio itself"

