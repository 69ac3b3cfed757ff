"""`/feedback`: human preference labelling in the browser, the studio's face of `tunesmith feedback`.

A session lives in `<runs>/.studio/feedback/<session>/`:

- `session.json`: the prompts file (as the pages name it) and a snapshot of its prompts (so a later edit
  of the file cannot shift which prompt a label belongs to), the model(s), max_new_tokens, temperature, seed;
- `pairs.jsonl`: per prompt index, the prompt and its two answers with the model that wrote each (`a`, `b`),
  generated once on first need and cached, so every annotator judges the same pair;
- `preferences.jsonl` / `preferences-unpaired.jsonl`: the output, written by `feedback.collect.append_choice`
  (the terminal command's own function), plus an `annotator` field: ready for `task: dpo` / `task: reward`
  (and "both bad" thumbs-down records for `loss: kto`);
- `labels.jsonl`: who labelled which prompt how (`a`, `b`, `both_bad`, `skip`), for progress and agreement.

Each annotator sees the two answers in an order drawn from a seeded RNG per (session, annotator, prompt):
position cannot bias the choice, and the server, not the browser, turns "first" / "second" back into
`a` / `b`. Every write is an fsynced append (`tunesmith.files.append_jsonl`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from tunesmith.feedback.collect import (
    Answer,
    Choice,
    append_choice,
    read_prompt_texts,
    says_nothing,
    unpaired_path,
)
from tunesmith.files import append_jsonl, atomic_write_json, read_jsonl_records
from tunesmith.inference.sampling import Sampling
from tunesmith.ui.models import pool_of
from tunesmith.ui.security import SAFE_SEGMENT, Refused, child_path, json_object

ANNOTATOR = re.compile(r"^\w[\w .@+-]{0,63}$")  # a person's name or handle; never a path
CHOICES: tuple[str, ...] = get_args(Choice)  # first, second, both_bad, skip: in the order shown
MAX_NEW_TOKENS = 2048


@dataclass
class Session:
    """One labelling session's folder and settings."""

    path: Path
    settings: dict[str, Any]

    name = property(lambda self: self.path.name)
    prompts = property(lambda self: list(self.settings["prompts"]))
    pairs_file = property(lambda self: self.path / "pairs.jsonl")
    preferences = property(lambda self: self.path / "preferences.jsonl")
    unpaired = property(lambda self: unpaired_path(self.path / "preferences.jsonl"))
    labels_file = property(lambda self: self.path / "labels.jsonl")

    def pairs(self) -> dict[int, dict[str, Any]]:
        return {int(p["index"]): p for p in read_jsonl_records(self.pairs_file) if isinstance(p.get("index"), int)}

    def labels(self) -> list[dict[str, Any]]:
        return [r for r in read_jsonl_records(self.labels_file) if isinstance(r.get("index"), int)]

    def swapped(self, annotator: str, index: int) -> bool:
        """Whether this annotator sees answer b first on this prompt: fixed per (session, annotator, prompt),
        so a reload shows the same order, and independent between annotators."""
        seed = f"{self.settings.get('seed', 0)}:{self.name}:{annotator}:{index}"
        return random.Random(seed).random() < 0.5  # a str seed is hashed with SHA-512: stable across runs


@dataclass
class Locks:
    """Per-session and per-pair locks: one generation per pair, one label per (annotator, prompt)."""

    held: dict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    background: set[asyncio.Task[Any]] = field(default_factory=set)


def open_session(ws: Any, name: Any) -> Session:
    if not isinstance(name, str) or not SAFE_SEGMENT.match(name):
        raise Refused(404, f"no feedback session named {name!r} under {ws.feedback}")
    path = child_path(ws.feedback, name, "feedback session")
    try:
        settings = json.loads((path / "session.json").read_text())
    except (OSError, ValueError) as exc:
        raise Refused(404, f"no feedback session named {name!r} under {ws.feedback}") from exc
    return Session(path, settings)


def list_sessions(ws: Any) -> list[dict[str, Any]]:
    found = []
    for folder in sorted(ws.feedback.iterdir()):
        if folder.is_dir() and SAFE_SEGMENT.match(folder.name) and (folder / "session.json").is_file():
            try:
                session = open_session(ws, folder.name)
            except Refused:
                continue
            found.append({"name": session.name, "prompts_file": session.settings.get("prompts_file"),
                          "models": session.settings.get("models", []),
                          **progress(session.labels(), len(session.prompts))})
    return found


def progress(labels: list[dict[str, Any]], total: int) -> dict[str, Any]:
    """Labels per annotator, and the agreement between them."""
    per_person = Counter(str(r.get("annotator")) for r in labels)
    return {"total": total, "labels": len(labels), "annotators": dict(sorted(per_person.items())),
            "agreement": agreement(labels)}


def agreement(labels: list[dict[str, Any]]) -> dict[str, Any]:
    """Raw pairwise agreement: over the prompts that two or more people labelled (skips ignored), the share
    of pairs of annotators who gave the same label (a, b or both bad). Each person's latest label counts."""
    latest: dict[int, dict[str, str]] = defaultdict(dict)
    for record in labels:
        if record.get("label") != "skip":
            latest[int(record["index"])][str(record.get("annotator"))] = str(record.get("label"))
    pairs = same = prompts = 0
    for by_person in latest.values():
        if len(by_person) >= 2:
            prompts += 1
            for x, y in itertools.combinations(by_person.values(), 2):
                pairs += 1
                same += x == y
    return {"prompts": prompts, "pairs": pairs, "same": same, "share": same / pairs if pairs else None}


def generate_pair(pool: Any, settings: dict[str, Any], index: int, prompt: str) -> dict[str, Any]:
    """Two answers to one prompt (blocking: run it in a worker thread). Two models answer greedily; one
    model answers twice with sampling and two different seeds."""
    models, tokens = settings["models"], int(settings["max_new_tokens"])
    if len(models) == 2:
        jobs = [(models[0], Sampling(max_new_tokens=tokens)), (models[1], Sampling(max_new_tokens=tokens))]
    else:
        seed = int(settings.get("seed", 0)) * 1_000_003 + 2 * index
        jobs = [(models[0], Sampling(float(settings["temperature"]), max_new_tokens=tokens, seed=seed + k))
                for k in (0, 1)]
    answers = [pool.complete(model, prompt, sampling) for model, sampling in jobs]
    return {"index": index, "prompt": prompt, "a": {"text": answers[0][0], "model": answers[0][1]},
            "b": {"text": answers[1][0], "model": answers[1][1]}}


def add_routes(app: FastAPI, studio: Any) -> None:
    ws = studio.workspace
    locks: Locks = studio.extras.setdefault("feedback", Locks())

    @app.get("/feedback", response_class=HTMLResponse)
    async def feedback_page(request: Request) -> Response:
        name, annotator = request.query_params.get("session"), request.query_params.get("annotator", "").strip()
        if name is None:
            return studio.page(request, "feedback.html", session=None, sessions=list_sessions(ws),
                               data_files=[ws.shown(p) for p in ws.data_files()], models=pool_of(studio).choices(),
                               suggested=time.strftime("feedback-%Y%m%d-%H%M%S"))
        session = open_session(ws, name)
        return studio.page(request, "feedback.html", session=session,
                           annotator=annotator if ANNOTATOR.match(annotator) else None,
                           files=session_files(session))

    @app.post("/api/feedback/sessions")
    async def create(request: Request) -> Response:
        settings = await asyncio.to_thread(check_setup, studio, await json_object(request))
        path = ws.feedback / settings.pop("session")
        try:
            path.mkdir()
        except FileExistsError as exc:
            raise Refused(409, f"a feedback session named {path.name!r} exists: open it from the list") from exc
        annotator = settings.pop("annotator")
        atomic_write_json(path / "session.json", settings)
        url = "/feedback?" + urlencode({"session": path.name, "annotator": annotator})
        return JSONResponse({"session": path.name, "url": url}, status_code=201)

    @app.get("/api/feedback/next")
    async def next_pair(request: Request) -> dict[str, Any]:
        session = open_session(ws, request.query_params.get("session"))
        annotator = _annotator(request.query_params.get("annotator"))
        state = labelling_state(session, annotator)
        later = state.pop("later")
        if state["done"]:
            return state
        index = state["index"]
        pair = await ensure_pair(session, index)
        if later is not None:  # the next pair is generated while the person reads this one
            task = asyncio.create_task(ensure_pair(session, later))
            locks.background.add(task)
            task.add_done_callback(_forget(locks.background))
        shown = [pair["b"], pair["a"]] if session.swapped(annotator, index) else [pair["a"], pair["b"]]
        identical = says_nothing(Answer(**shown[0]), Answer(**shown[1]))
        return {**state, "prompt": pair["prompt"], "first": shown[0]["text"], "second": shown[1]["text"],
                "identical": identical}

    @app.post("/api/feedback/label")
    async def label(request: Request) -> dict[str, Any]:
        body = await json_object(request)
        session, annotator = open_session(ws, body.get("session")), _annotator(body.get("annotator"))
        index, choice = body.get("index"), body.get("choice")
        if not isinstance(index, int) or not 0 <= index < len(session.prompts) or choice not in CHOICES:
            raise Refused(400, f'send {{"index": 0..{len(session.prompts) - 1}, "choice": one of {CHOICES}}}')
        async with locks.held[f"labels:{session.name}"]:
            if any(r["index"] == index and r.get("annotator") == annotator for r in session.labels()):
                raise Refused(409, f"{annotator} has already labelled prompt {index + 1}")
            pair = session.pairs().get(index)
            if pair is None:
                raise Refused(409, f"prompt {index + 1} has no answers yet: reload the page")
            return await asyncio.to_thread(record_label, session, annotator, pair, choice)

    async def ensure_pair(session: Session, index: int) -> dict[str, Any]:
        async with locks.held[f"pair:{session.name}:{index}"]:
            pair = session.pairs().get(index)
            if pair is None:
                pool = pool_of(studio)
                pair = await asyncio.to_thread(generate_pair, pool, session.settings, index, session.prompts[index])
                await asyncio.to_thread(append_jsonl, session.pairs_file, [pair])
            return pair


def record_label(session: Session, annotator: str, pair: dict[str, Any], choice: Choice) -> dict[str, Any]:
    """Append the preference record(s) and the label; say what was written."""
    if session.swapped(annotator, pair["index"]) and choice in ("first", "second"):
        choice = "second" if choice == "first" else "first"  # the screen's order, back to (a, b)
    a, b = Answer(**pair["a"]), Answer(**pair["b"])
    outcome = append_choice(session.preferences, pair["prompt"], a, b, choice, {"annotator": annotator})
    label = {"first": "a", "second": "b", "both_bad": "both_bad", "skip": "skip"}[choice]
    if outcome == "skipped":
        label = "skip"  # identical or blank answers: a skip, whatever was pressed
    append_jsonl(session.labels_file, [{"annotator": annotator, "index": pair["index"], "label": label,
                                        "time": round(time.time(), 3)}])
    return {"recorded": outcome, "label": label}


def labelling_state(session: Session, annotator: str) -> dict[str, Any]:
    labels = session.labels()
    mine = {r["index"] for r in labels if r.get("annotator") == annotator}
    todo = [i for i in range(len(session.prompts)) if i not in mine]
    state = {"session": session.name, "annotator": annotator, "mine": len(mine), "done": not todo,
             **progress(labels, len(session.prompts))}
    if todo:  # "later": the prompt after this one, whose pair is generated ahead
        return {**state, "index": todo[0], "later": todo[1] if len(todo) > 1 else None}
    return {**state, "later": None, "files": session_files(session)}


def session_files(session: Session) -> dict[str, str]:
    return {"preferences": str(session.preferences), "unpaired": str(session.unpaired),
            "labels": str(session.labels_file)}


def check_setup(studio: Any, body: dict[str, Any]) -> dict[str, Any]:
    """A new session's settings from the setup form, or a Refused(400) naming the field."""
    ws = studio.workspace
    name = str(body.get("session") or "").strip()
    if not SAFE_SEGMENT.match(name):
        raise Refused(400, f"session name {name!r}: a plain name (letters, digits, . _ -), it names a folder")
    annotator = _annotator(body.get("annotator"))
    known = {choice["id"] for choice in pool_of(studio).choices()}
    models = [str(m) for m in (body.get("model_a"), body.get("model_b")) if m]
    if not models or any(m not in known for m in models):
        raise Refused(400, f"models {models}: choose model A (and optionally B) among the finished runs")
    models = list(dict.fromkeys(models))  # the same model twice is one model sampled twice
    tokens, temperature = _number(body, "max_new_tokens", 96, int), _number(body, "temperature", 0.8, float)
    limit = _number(body, "limit", 0, int)
    if not 1 <= tokens <= MAX_NEW_TOKENS or not 0 <= temperature <= 2 or limit < 0:
        raise Refused(400, f"max_new_tokens 1..{MAX_NEW_TOKENS}, temperature 0..2 and limit >= 0, please")
    if len(models) == 1 and temperature == 0:
        raise Refused(400, "temperature 0 with one model gives the same answer twice: raise it, or pick model B")
    path = ws.data_file(str(body.get("prompts") or ""))
    prompts = read_prompt_texts(path)[: limit or None]
    if not prompts:
        raise Refused(400, f"{ws.shown(path)} has no prompts")
    return {"session": name, "annotator": annotator, "prompts_file": ws.shown(path), "models": models,
            "max_new_tokens": tokens, "temperature": temperature, "seed": _number(body, "seed", 0, int),
            "created": time.time(), "prompts": prompts}


def _annotator(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not ANNOTATOR.match(text):
        raise Refused(400, f"annotator {value!r}: give your name (letters, digits, space . @ + -, up to 64)")
    return text


def _number(body: dict[str, Any], key: str, default: Any, kind: type) -> Any:
    value = body.get(key)
    if value in (None, ""):
        return default
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise Refused(400, f"{key} {value!r}: give a number") from exc


def _forget(tasks: set[asyncio.Task[Any]]) -> Any:
    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # a failed prefetch is retried, and reported, when that pair is asked for

    return done
