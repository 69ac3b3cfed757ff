"""`/feedback` in headless Chromium against the studio on loopback: a person sets up a session (run `yes`
vs run `no`), labels prompts with the keyboard (1, 2, b, s), and the choices land in the preference files
in the format `tunesmith feedback` writes and `task: dpo` reads; a second person labels the same prompts in
another browser context and the page shows their agreement. Forged (no CSRF header) and hostile requests
(traversal in session names, markup in annotator names) are refused, and every value is shown as text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ANSWERS, PROMPTS, write_jsonl
from tests.ui.conftest import csrf_of, running_studio, screenshot
from tunesmith.config import SourceConfig
from tunesmith.data.records import PreferencePair, UnpairedFeedback
from tunesmith.data.sources import load_source
from tunesmith.ui.feedback_pages import Session, agreement, record_label

HOSTILE = '<img src=x onerror="alert(1)"> & "quoted"'
QUESTIONS = [*PROMPTS[:3], f"{PROMPTS[3]} {HOSTILE}"]  # the fourth is skipped by both people


@pytest.fixture
def space(tmp_path: Path, tiny_runs: dict[str, Path]) -> tuple[Path, Path]:
    """A copy of the two tiny runs (the studio writes its sessions under --runs) and a prompts file."""
    runs, data = tmp_path / "runs", tmp_path / "data"
    for name in ("yes", "no"):
        shutil.copytree(tiny_runs[name], runs / name, ignore=shutil.ignore_patterns("checkpoints"))
    data.mkdir()
    write_jsonl(data / "questions.jsonl", [{"prompt": q} for q in QUESTIONS])
    return runs, data


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def shown_item(page: Any, mine: int) -> dict[str, Any]:
    """The pair on screen once `mine` labels of this person are in."""
    page.wait_for_selector(f'#labelling[data-ready="1"][data-mine="{mine}"]')
    return {"index": int(page.get_attribute("#labelling", "data-index")),
            "prompt": page.text_content("#prompt"),
            "first": page.text_content("#first .answer-text"),
            "second": page.text_content("#second .answer-text")}


def label_with_keys(page: Any, keys: list[str], shot: str | None = None) -> list[dict[str, Any]]:
    seen = []
    for done, key in enumerate(keys):
        item = shown_item(page, done)
        if shot and done == 1:
            screenshot(page, shot)
        seen.append({**item, "key": key})
        page.keyboard.press(key)
    page.wait_for_selector(f'#labelling[data-ready="1"][data-mine="{len(keys)}"]')
    return seen


def start_session(page: Any, url: str, session: str, shot: str | None = None) -> None:
    """Set up a labelling session in the page as alice: run `yes` against run `no`, short answers."""
    page.goto(f"{url}/feedback")
    page.select_option("#prompts", "questions.jsonl")
    page.select_option("#model_a", "run:yes")
    page.select_option("#model_b", "run:no")
    page.fill("#annotator", "alice")
    page.fill("#session", session)
    page.click("#setup details > summary")  # folded, as a person would open it
    page.fill("#max_new_tokens", "12")
    if shot:
        screenshot(page, shot)
    page.click("#setup button[type=submit]")
    page.wait_for_url(f"**/feedback?session={session}&annotator=alice")


def test_label_pairs_with_the_keyboard(browser: Any, space: tuple[Path, Path]) -> None:
    runs, data = space
    with running_studio(runs, data) as (url, studio):
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        start_session(page, url, "panel", shot="feedback-setup")

        alice = label_with_keys(page, ["1", "2", "b", "s"], shot="feedback")
        assert [item["index"] for item in alice] == [0, 1, 2, 3]
        assert [item["prompt"] for item in alice] == QUESTIONS  # markup shown as text, never run
        assert page.locator("#prompt img").count() == 0
        assert page.is_visible("#done") and "All 4 prompts are labelled by you" in page.inner_text("#done")
        session = runs / ".studio" / "feedback" / "panel"
        assert str(session / "preferences.jsonl") in page.inner_text("#done")

        pairs = {p["index"]: p for p in read(session / "pairs.jsonl")}
        assert sorted(pairs) == [0, 1, 2, 3]  # generated once each
        for i in range(3):  # greedy answers to trained prompts (the tiny runs do not always stop after them)
            assert pairs[i]["a"]["text"].startswith(ANSWERS["yes"]) and pairs[i]["b"]["text"].startswith(ANSWERS["no"])
        writer = {}
        for pair in pairs.values():  # each run answers its own way; the record names who wrote what
            assert (pair["a"]["model"], pair["b"]["model"]) == ("yes", "no")
            assert pair["a"]["text"].startswith("Yes") and pair["b"]["text"].startswith("No")
            writer.update({pair["a"]["text"]: "yes", pair["b"]["text"]: "no"})

        prefs = read(session / "preferences.jsonl")
        assert prefs == [
            {"prompt": QUESTIONS[0], "chosen": alice[0]["first"], "rejected": alice[0]["second"],
             "chosen_model": writer[alice[0]["first"]], "rejected_model": writer[alice[0]["second"]],
             "annotator": "alice"},
            {"prompt": QUESTIONS[1], "chosen": alice[1]["second"], "rejected": alice[1]["first"],
             "chosen_model": writer[alice[1]["second"]], "rejected_model": writer[alice[1]["first"]],
             "annotator": "alice"},
        ]
        unpaired = read(session / "preferences-unpaired.jsonl")
        assert unpaired == [{"prompt": QUESTIONS[2], "completion": pairs[2][side]["text"], "label": False,
                             "model": model, "annotator": "alice"} for side, model in (("a", "yes"), ("b", "no"))]
        labels = read(session / "labels.jsonl")
        assert [(r["annotator"], r["index"], r["label"]) for r in labels][2:] == [("alice", 2, "both_bad"),
                                                                                  ("alice", 3, "skip")]

        # what the trainers read: preference pairs (dpo / reward) and thumbs-down records (kto)
        loaded = load_source(SourceConfig(path=str(session / "preferences.jsonl")))
        assert loaded.format_name == "preference"
        read_pairs = [r for r in loaded.records if isinstance(r, PreferencePair)]
        assert len(read_pairs) == len(loaded.records) == 2
        assert [(r.prompt[-1].content, r.chosen) for r in read_pairs] == [
            (QUESTIONS[0], alice[0]["first"]), (QUESTIONS[1], alice[1]["second"])]
        kto = load_source(SourceConfig(path=str(session / "preferences-unpaired.jsonl")))
        assert kto.format_name == "kto" and all(isinstance(r, UnpairedFeedback) for r in kto.records)

        # a second person, in another browser context, labels the same pairs (by their text, whatever
        # order they are shown in): the same as alice on prompts 1 and 3, the other answer on prompt 2
        other = browser.new_context(viewport={"width": 1280, "height": 860})
        bob_page = other.new_page()
        bob_page.goto(f"{url}/feedback")
        row = bob_page.locator("#sessions tbody tr", has_text="panel")
        row.locator("input[name=annotator]").fill("bob")
        row.locator("button").click()
        bob_page.wait_for_url("**/feedback?session=panel&annotator=bob")
        wanted = {0: prefs[0]["chosen"], 1: prefs[1]["rejected"]}
        for done in range(4):
            item = shown_item(bob_page, done)
            if item["index"] in wanted:
                bob_page.keyboard.press("1" if item["first"] == wanted[item["index"]] else "2")
            else:
                bob_page.keyboard.press("b" if item["index"] == 2 else "s")
        bob_page.wait_for_selector('#labelling[data-ready="1"][data-mine="4"]')
        shown = bob_page.inner_text("#stats")
        assert "67% of annotator pairs gave the same label, over 3 prompt(s)" in shown
        assert "alice 4" in shown and "bob 4" in shown
        bob = [r for r in read(session / "preferences.jsonl") if r["annotator"] == "bob"]
        assert [(r["prompt"], r["chosen"]) for r in bob] == [(QUESTIONS[0], wanted[0]), (QUESTIONS[1], wanted[1])]
        page.reload()
        page.wait_for_selector('#labelling[data-ready="1"][data-done="1"]')
        assert "67%" in page.inner_text("#agreement")
        screenshot(page, "feedback-done")
        other.close()
        page.goto(f"{url}/feedback")
        assert "67% over 3" in page.inner_text("#sessions")
        screenshot(page, "feedback-sessions")
        page.close()


def test_forged_and_hostile_requests_are_refused(space: tuple[Path, Path]) -> None:
    runs, data = space
    with running_studio(runs, data) as (url, _), httpx.Client(base_url=url) as client:
        setup = {"session": "s1", "prompts": "questions.jsonl", "model_a": "run:yes", "model_b": "run:no",
                 "annotator": "alice", "max_new_tokens": 4}
        forged = client.post("/api/feedback/sessions", json=setup)
        assert forged.status_code == 403 and "CSRF" in forged.json()["error"]
        assert client.post("/api/feedback/label", json={"session": "s1"}).status_code == 403
        headers = {"x-csrf-token": csrf_of(client, url)}
        for name in ("..%2f..%2fetc", "../../etc", "/etc", "a/b", ".studio", ""):
            refused = client.post("/api/feedback/sessions", json={**setup, "session": name}, headers=headers)
            assert refused.status_code == 400 and "plain name" in refused.json()["error"], name
            assert client.get("/api/feedback/next", params={"session": name, "annotator": "x"}).status_code == 403
            asked = client.get("/api/feedback/next", params={"session": name, "annotator": "x"}, headers=headers)
            assert asked.status_code == 404  # a GET that generates answers needs the CSRF header too
            assert client.get(f"/feedback?session={name}").status_code == 404
        assert not list((runs / ".studio" / "feedback").iterdir()) and not (runs.parent / "etc").exists()
        hostile = client.post("/api/feedback/sessions", json={**setup, "annotator": HOSTILE}, headers=headers)
        assert hostile.status_code == 400
        elsewhere = client.post("/api/feedback/sessions", json={**setup, "prompts": "/etc/passwd"}, headers=headers)
        assert elsewhere.status_code == 404
        made = client.post("/api/feedback/sessions", json=setup, headers=headers)
        assert made.status_code == 201 and made.json()["url"] == "/feedback?session=s1&annotator=alice"
        assert "Who is labelling?" in client.get("/feedback?session=s1").text
        asked = client.get("/feedback", params={"session": "s1", "annotator": HOSTILE}).text
        assert "Who is labelling?" in asked and "<img" not in asked  # a name that is not one is not shown
        again = client.post("/api/feedback/sessions", json=setup, headers=headers)
        assert again.status_code == 409
        state = client.get("/api/feedback/next", params={"session": "s1", "annotator": "alice"}, headers=headers).json()
        assert state["index"] == 0 and state["prompt"] == QUESTIONS[0]
        body = {"session": "s1", "annotator": "alice", "index": 0, "choice": "first"}
        for bad in ({"index": 9}, {"index": "0"}, {"choice": "third"}):
            assert client.post("/api/feedback/label", json={**body, **bad}, headers=headers).status_code == 400
        assert client.post("/api/feedback/label", json=body, headers=headers).json()["recorded"] == "pair"
        twice = client.post("/api/feedback/label", json=body, headers=headers)  # a double key press
        assert twice.status_code == 409
        assert len(read(runs / ".studio" / "feedback" / "s1" / "preferences.jsonl")) == 1


def test_agreement_counts_pairs_of_people_and_ignores_skips() -> None:
    labels = [{"annotator": who, "index": i, "label": label} for who, i, label in [
        ("ann", 0, "a"), ("bo", 0, "a"), ("cy", 0, "b"),  # 3 pairs, 1 the same
        ("ann", 1, "both_bad"), ("bo", 1, "both_bad"),  # 1 pair, the same
        ("ann", 2, "a"), ("bo", 2, "skip"),  # one real label: not counted
        ("ann", 3, "b"),
    ]]
    assert agreement(labels) == {"prompts": 2, "pairs": 4, "same": 2, "share": 0.5}
    assert agreement([])["share"] is None


def test_order_is_random_per_person_and_prompt_and_mapped_back(tmp_path: Path) -> None:
    session = Session(tmp_path, {"seed": 0, "prompts": ["p"]})
    orders = [session.swapped("ann", i) for i in range(400)]
    assert 150 < sum(orders) < 250  # about half the pairs are shown b first
    assert orders == [session.swapped("ann", i) for i in range(400)]  # and a reload shows the same order
    assert orders != [session.swapped("bo", i) for i in range(400)]
    index = next(i for i in range(400) if session.swapped("ann", i))
    pair = {"index": index, "prompt": "p", "a": {"text": "A", "model": "m1"}, "b": {"text": "B", "model": "m2"}}
    assert record_label(session, "ann", pair, "first") == {"recorded": "pair", "label": "b"}
    assert read(tmp_path / "preferences.jsonl")[0]["chosen"] == "B"  # b was on screen first
    same = {**pair, "index": index + 1, "b": {"text": " A ", "model": "m2"}}
    assert record_label(session, "ann", same, "second") == {
        "recorded": "skipped", "label": "skip"}  # identical answers say nothing
