"""The Playground: one prompt answered side by side by base models and tuned runs, each answer streamed
as it is decoded, with the sampling settings of `tunesmith serve` (temperature, top-p, top-k, repetition
penalty, max tokens, seed). Answers come from `ModelPool`, i.e. the serving target and scheduler."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError

from tunesmith.errors import UserError
from tunesmith.inference.sampling import Sampling
from tunesmith.ui.models import pool_of
from tunesmith.ui.security import Refused, json_object

MAX_PROMPT_CHARS = 20_000


class Ask(BaseModel):
    model: str
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    system: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    max_tokens: int = Field(128, ge=1, le=1024)
    seed: int | None = None


def add_routes(app: FastAPI, studio: Any) -> None:
    @app.get("/playground", response_class=HTMLResponse)
    async def playground(request: Request) -> Response:
        choices = pool_of(studio).choices()
        wanted = request.query_params.getlist("run")
        picked = [f"run:{n}" for n in wanted] + [f"base:{n}" for n in wanted[:1]]
        if not picked and choices:  # the newest run and its base
            picked = [choices[0]["id"], choices[1]["id"]]
        return studio.page(request, "playground.html", choices=choices, picked=picked)

    @app.post("/api/playground")
    async def ask(request: Request) -> Response:
        try:
            body = Ask.model_validate(await json_object(request))
            sampling = Sampling(temperature=body.temperature, top_p=body.top_p, top_k=body.top_k,
                                repetition_penalty=body.repetition_penalty, max_new_tokens=body.max_tokens,
                                seed=body.seed)
        except ValidationError as exc:
            raise Refused(400, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
        except UserError as exc:
            raise Refused(400, str(exc)) from None
        pieces = pool_of(studio).stream(body.model, body.prompt, sampling, body.system or None)
        first = await _first(pieces)  # load and queue errors become the response's status, not a broken stream
        return StreamingResponse(_events(first, pieces), media_type="text/event-stream")


async def _first(pieces: AsyncIterator[str]) -> str | None:
    try:
        return await pieces.__anext__()
    except StopAsyncIteration:
        return None


async def _events(first: str | None, pieces: AsyncIterator[str]) -> AsyncIterator[str]:
    """Server-sent events: {"text": piece} as the answer grows, then {"done": true} (or {"error": ...})."""
    try:
        if first is not None:
            yield f"data: {json.dumps({'text': first})}\n\n"
            async for piece in pieces:
                yield f"data: {json.dumps({'text': piece})}\n\n"
        yield f"data: {json.dumps({'done': True})}\n\n"
    except Refused as exc:
        yield f"data: {json.dumps({'error': exc.message})}\n\n"
    finally:
        await pieces.aclose()  # type: ignore[attr-defined]
