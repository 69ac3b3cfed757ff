"""`tunesmith serve`: an OpenAI-compatible HTTP API (FastAPI + uvicorn) over one loaded TARGET.

Endpoints: GET /health, GET /v1/models, POST /v1/chat/completions, POST /v1/completions, streaming as
OpenAI streams (server-sent `data: {...}` chunks, then `data: [DONE]`). Requests become jobs in the
`Scheduler`, which batches those that share a model id. Bounds are checked before a job is queued
(body size, prompt + max_tokens within the context, max_tokens cap, queue length) and answered with
OpenAI-style error JSON. A client that goes away cancels its jobs, which frees their batch slots.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tunesmith.data.records import Message
from tunesmith.inference.engine import Job
from tunesmith.inference.sampling import Sampling
from tunesmith.serve.openai_api import (
    ApiError,
    ChatRequest,
    CompletionRequest,
    SamplingFields,
    chunk,
    new_id,
    parse_request,
    usage,
)
from tunesmith.serve.scheduler import QueueFull, Scheduler, Ticket
from tunesmith.serve.target import LoadedTarget

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_tokens: int = 2048  # cap on a request's max_tokens
    default_max_tokens: int = 256
    max_batch: int = 8
    max_queue: int = 64


class Pending:
    """A request's jobs, bridged from the worker thread to the request's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, jobs: list[Job]) -> None:
        self.loop, self.jobs = loop, jobs
        self.events: asyncio.Queue[tuple[int, str | None]] = asyncio.Queue()  # (choice, text or None=done)
        for index, job in enumerate(jobs):
            job.on_text = self._sender(index)

    def _sender(self, index: int) -> Any:
        return lambda text: self.loop.call_soon_threadsafe(self.events.put_nowait, (index, text))

    def done(self, index: int) -> Any:
        return lambda _job: self.loop.call_soon_threadsafe(self.events.put_nowait, (index, None))

    def cancel(self) -> None:
        for job in self.jobs:
            job.cancel.set()


def build_app(target: LoadedTarget, api_key: str | None = None, limits: Limits | None = None) -> FastAPI:
    limits = limits or Limits()
    scheduler = Scheduler(target, limits.max_batch, limits.max_queue)
    app = FastAPI(title="tunesmith", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.scheduler = scheduler

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": target.model_ids, "queued": scheduler.waiting,
                "in_flight": scheduler.in_flight, "batches": scheduler.batches_run}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        _check_key(request, api_key)
        owned = {mid: ("base" if mid == target.base_name and mid != target.name else "tunesmith") for mid in target.model_ids}
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": o} for m, o in owned.items()],
        }

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        _check_key(request, api_key)
        body: ChatRequest = parse_request(ChatRequest, await _read_json(request, limits))
        messages = [Message("system" if m.role == "developer" else m.role, m.text()) for m in body.messages]
        _check_model(target, body.model)
        prompt_ids = _render(lambda: target.chat_ids(messages), "messages")
        return await _answer(request, body, prompt_ids, "chat.completion", target, scheduler, limits)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        _check_key(request, api_key)
        body: CompletionRequest = parse_request(CompletionRequest, await _read_json(request, limits))
        if isinstance(body.prompt, list):
            if len(body.prompt) != 1:
                raise ApiError(400, "prompt: give one prompt per request", param="prompt")
            body.prompt = body.prompt[0]
        if body.echo:
            raise ApiError(400, "echo is not supported", param="echo")
        _check_model(target, body.model)
        prompt_ids = _render(lambda: target.text_ids(body.prompt), "prompt")
        if not prompt_ids:
            raise ApiError(400, "prompt: empty", param="prompt")
        return await _answer(request, body, prompt_ids, "text_completion", target, scheduler, limits)

    return app


def _render(build: Any, param: str) -> list[int]:
    """Prompt token ids; a template that rejects these messages is the request's fault (400)."""
    import jinja2

    from tunesmith.errors import UserError

    try:
        ids: list[int] = build()
    except (jinja2.TemplateError, UserError, ValueError) as exc:
        raise ApiError(400, f"the chat template cannot render these messages: {exc}", param=param) from None
    return ids


def _check_key(request: Any, api_key: str | None) -> None:
    if api_key is None:
        return
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
        raise ApiError(401, "Incorrect API key provided.", "authentication_error", code="invalid_api_key")


def _check_model(target: LoadedTarget, model_id: str) -> None:
    if model_id not in target.model_ids:
        raise ApiError(
            404,
            f"The model `{model_id}` does not exist; served: {', '.join(target.model_ids)}",
            param="model",
            code="model_not_found",
        )


async def _read_json(request: Any, limits: Limits) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise ApiError(413, f"request body over {limits.max_body_bytes} bytes", code="body_too_large")
    raw = b""
    async for part in request.stream():
        raw += part
        if len(raw) > limits.max_body_bytes:
            raise ApiError(413, f"request body over {limits.max_body_bytes} bytes", code="body_too_large")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(
            400, "We could not parse the JSON body of your request. (HINT: send valid JSON.)"
        ) from None


def _sampling(body: SamplingFields, prompt_len: int, context: int, limits: Limits) -> list[Sampling]:
    if body.frequency_penalty or body.presence_penalty:
        raise ApiError(400, "frequency_penalty / presence_penalty are not supported; use repetition_penalty",
                       param="frequency_penalty" if body.frequency_penalty else "presence_penalty")
    room = context - prompt_len
    if room < 1:
        raise ApiError(
            400,
            f"This model's maximum context length is {context} tokens; the prompt has {prompt_len}.",
            param="messages" if isinstance(body, ChatRequest) else "prompt",
            code="context_length_exceeded",
        )
    asked = body.max_completion_tokens or body.max_tokens
    if asked is not None and asked > limits.max_tokens:
        raise ApiError(400, f"max_tokens {asked} is over this server's limit of {limits.max_tokens}",
                       param="max_tokens", code="invalid_value")
    if asked is not None and asked > room:
        raise ApiError(
            400,
            f"This model's maximum context length is {context} tokens; the prompt has {prompt_len} and "
            f"max_tokens asks for {asked}.",
            param="max_tokens",
            code="context_length_exceeded",
        )
    budget = asked or min(limits.default_max_tokens, room)
    return [
        Sampling(
            temperature=body.temperature,
            top_p=body.top_p,
            top_k=body.top_k,
            repetition_penalty=body.repetition_penalty,
            max_new_tokens=budget,
            seed=None if body.seed is None else body.seed + i,
            stop=body.stop_list(),
        )
        for i in range(body.n)
    ]


async def _answer(
    request: Any, body: SamplingFields, prompt_ids: list[int], obj: str, target: LoadedTarget,
    scheduler: Scheduler, limits: Limits,
) -> Any:
    samplings = _sampling(body, len(prompt_ids), target.context_length, limits)
    jobs = [Job(list(prompt_ids), s) for s in samplings]
    pending = Pending(asyncio.get_running_loop(), jobs)
    try:
        scheduler.submit([Ticket(body.model, job, pending.done(i)) for i, job in enumerate(jobs)])
    except QueueFull as exc:
        raise ApiError(503, f"server busy: {exc}; retry later", "server_error", code="queue_full") from None
    request_id = new_id("chatcmpl" if obj == "chat.completion" else "cmpl")
    if body.stream:
        stream = _stream(request, pending, request_id, obj, body, len(prompt_ids))
        return StreamingResponse(stream, media_type="text/event-stream")
    await _wait_all(request, pending)
    _raise_failed(jobs)
    choices = [_choice(obj, i, job) for i, job in enumerate(jobs)]
    return chunk(request_id, obj, body.model, choices,
                 usage=usage(len(prompt_ids), sum(len(j.tokens) for j in jobs)))


async def _wait_all(request: Any, pending: Pending) -> None:
    """Wait for every job; a client that hangs up meanwhile (checked twice a second) cancels them."""
    left, checked = len(pending.jobs), time.monotonic()
    while left:
        try:
            _, text = await asyncio.wait_for(pending.events.get(), timeout=0.5)
            left -= text is None
        except TimeoutError:
            pass
        if time.monotonic() - checked >= 0.5:
            checked = time.monotonic()
            if await request.is_disconnected():
                pending.cancel()
                return


def _raise_failed(jobs: list[Job]) -> None:
    failed = next((job for job in jobs if job.finish_reason == "error"), None)
    if failed is not None:
        raise ApiError(500, failed.text, "server_error", code="generation_failed")


def _choice(obj: str, index: int, job: Job) -> dict[str, Any]:
    reason = "length" if job.finish_reason == "length" else "stop"
    if obj == "chat.completion":
        return {"index": index, "message": {"role": "assistant", "content": job.text}, "finish_reason": reason,
                "logprobs": None}
    return {"index": index, "text": job.text, "finish_reason": reason, "logprobs": None}


async def _stream(
    request: Any, pending: Pending, request_id: str, obj: str, body: SamplingFields, prompt_tokens: int
) -> AsyncIterator[str]:
    kind = "chat.completion.chunk" if obj == "chat.completion" else "text_completion"

    with_usage = body.stream_options is not None and body.stream_options.include_usage

    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        if with_usage:  # as OpenAI: "usage": null on every chunk but the last
            extra.setdefault("usage", None)
        return f"data: {json.dumps(chunk(request_id, kind, body.model, choices, **extra))}\n\n"

    def piece(index: int, text: str | None, reason: str | None) -> dict[str, Any]:
        if obj == "chat.completion":
            delta = {} if text is None else {"content": text}
            return {"index": index, "delta": delta, "finish_reason": reason, "logprobs": None}
        return {"index": index, "text": text or "", "finish_reason": reason, "logprobs": None}

    try:
        if obj == "chat.completion":
            for i in range(len(pending.jobs)):
                yield event([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None,
                              "logprobs": None}])
        left = len(pending.jobs)
        while left:
            index, text = await pending.events.get()
            if text is not None:
                yield event([piece(index, text, None)])
                continue
            left -= 1
            job = pending.jobs[index]
            if job.finish_reason == "error":
                yield f"data: {json.dumps(ApiError(500, job.text, 'server_error').body())}\n\n"
                continue
            yield event([piece(index, None, "length" if job.finish_reason == "length" else "stop")])
        if with_usage:
            completion_tokens = sum(len(j.tokens) for j in pending.jobs)
            yield event([], usage=usage(prompt_tokens, completion_tokens))
        yield "data: [DONE]\n\n"
    finally:  # the client went away (or we finished): nothing of this request keeps running
        pending.cancel()


def serve_forever(target: LoadedTarget, host: str, port: int, api_key: str | None, limits: Limits) -> None:
    import uvicorn

    app = build_app(target, api_key, limits)
    print(f"serving {', '.join(target.model_ids)} on http://{host}:{port}/v1 (default model {target.name})",
          flush=True)
    started = time.time()
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
    print(f"stopped after {time.time() - started:.0f} s", flush=True)
