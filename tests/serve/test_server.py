"""`tunesmith serve` as a real process on loopback: the official `openai` client (plain and streaming,
chat and completions), two adapters answering concurrently with their own outputs, and every bad request
answered with OpenAI-style error JSON and the right status, without disturbing the others."""

from __future__ import annotations

import concurrent.futures as futures
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.serve.conftest import ServerProcess

KEY = {"Authorization": "Bearer sekrit"}


def client(server: ServerProcess, key: str = "sekrit") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=key, max_retries=0, timeout=60)


def test_models_list_base_and_adapters(server: ServerProcess) -> None:
    ids = [m.id for m in client(server).models.list().data]
    assert ids[:2] == ["yes", "no"] and len(ids) == 3  # default model first, then the adapter, then the base
    health = httpx.get(f"{server.base_url}/health").json()
    assert health["status"] == "ok" and health["models"] == ids


def test_chat_and_completions_plain_and_streaming(server: ServerProcess) -> None:
    api = client(server)
    messages = [{"role": "user", "content": "Say something."}]
    plain = api.chat.completions.create(model="yes", messages=messages, max_tokens=12, temperature=0)
    assert plain.choices[0].message.content.startswith("Yes, certainly")
    assert plain.choices[0].finish_reason in ("stop", "length")
    assert plain.usage.completion_tokens == 12 or plain.choices[0].finish_reason == "stop"
    assert plain.usage.total_tokens == plain.usage.prompt_tokens + plain.usage.completion_tokens
    stream = api.chat.completions.create(
        model="yes", messages=messages, max_tokens=12, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == plain.choices[0].finish_reason
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    stopped = api.chat.completions.create(model="yes", messages=messages, max_tokens=20, temperature=0,
                                          stop=["certainly"])
    assert stopped.choices[0].message.content == "Yes, " and stopped.choices[0].finish_reason == "stop"
    completion = api.completions.create(model="no", prompt="Once upon a time", max_tokens=6, temperature=0)
    assert completion.choices[0].finish_reason == "length" and completion.usage.completion_tokens == 6
    pieces = [c.choices[0].text for c in api.completions.create(
        model="no", prompt="Once upon a time", max_tokens=6, temperature=0, stream=True)]
    assert "".join(pieces) == completion.choices[0].text
    several = api.chat.completions.create(model="no", messages=messages, max_tokens=5, temperature=0.9, n=3, seed=4)
    assert [c.index for c in several.choices] == [0, 1, 2]
    again = api.chat.completions.create(model="no", messages=messages, max_tokens=5, temperature=0.9, n=3, seed=4)
    assert [c.message.content for c in again.choices] == [c.message.content for c in several.choices]


def answer_alone(run: Path, prompt: str) -> str:
    """The run loaded on its own base, in this process: what the server must reproduce."""
    from tunesmith.data.records import Message
    from tunesmith.inference.engine import Job, run_batch
    from tunesmith.inference.sampling import Sampling
    from tunesmith.serve.target import load_served

    target = load_served(str(run))
    job = Job(target.chat_ids([Message("user", prompt)]), Sampling(max_new_tokens=10))
    return run_batch(target.model, target.tokenizer, [job], target.stop_ids)[0].text


def test_two_adapters_answer_concurrently_with_their_own_outputs(
    server: ServerProcess, tiny_runs: dict[str, Path]
) -> None:
    api = client(server)
    prompts = ["Say something.", "How are you?", "Describe the sea.", "Pick a number."]

    def ask(args: tuple[str, str]) -> tuple[str, str]:
        model, prompt = args
        reply = api.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                            max_tokens=10, temperature=0)
        return model, reply.choices[0].message.content or ""

    alone = {(m, p): answer_alone(tiny_runs[m], p) for m in ("yes", "no") for p in prompts}
    jobs = [(m, p) for p in prompts for m in ("yes", "no", "yes", "no")][:12]
    with futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, jobs))
    for (model, prompt), (_, text) in zip(jobs, answers, strict=True):
        assert text == alone[(model, prompt)], (model, prompt)  # each adapter answers as when loaded alone
        assert text.startswith("Yes" if model == "yes" else "No")
    base = api.chat.completions.create(model=[m.id for m in api.models.list().data][2],
                                       messages=[{"role": "user", "content": "Say something."}], max_tokens=10,
                                       temperature=0).choices[0].message.content
    assert not (base or "").startswith(("Yes", "No"))  # the base answers with the method switched off


def post(server: ServerProcess, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{server.base_url}{path}", content=raw,
                      headers={"content-type": "application/json", **(KEY if headers is None else headers)},
                      timeout=30)


CHAT = {"model": "yes", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        (b"{not json", 400, None, None),
        (b"[1, 2]", 400, None, None),
        ({**CHAT, "model": "maybe"}, 404, "model", "model_not_found"),
        ({**CHAT, "max_tokens": -3}, 400, "max_tokens", "invalid_value"),
        ({**CHAT, "max_tokens": 10_000}, 400, "max_tokens", "invalid_value"),
        ({**CHAT, "temperature": "hot"}, 400, "temperature", "invalid_value"),
        ({**CHAT, "stream": "maybe"}, 400, "stream", "invalid_value"),
        ({**CHAT, "max_tokens": "4"}, 400, "max_tokens", "invalid_value"),
        ({**CHAT, "seed": 2**64}, 400, "seed", "invalid_value"),
        ({**CHAT, "n": 0}, 400, "n", "invalid_value"),
        ({**CHAT, "messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages.0.role", "invalid_value"),
        ({**CHAT, "logit_bias_x": 1}, 400, "logit_bias_x", None),
        ({**CHAT, "messages": []}, 400, "messages", "invalid_value"),
        ({**CHAT, "messages": [{"role": "user", "content": "word " * 1100}]}, 400, "messages",
         "context_length_exceeded"),
        ({**CHAT, "messages": [{"role": "user", "content": "word " * 990}], "max_tokens": 60}, 400,
         "max_tokens", "context_length_exceeded"),
    ],
)
def test_bad_requests_get_openai_errors(
    server: ServerProcess, body: Any, status: int, param: str | None, code: str | None
) -> None:
    response = post(server, "/v1/chat/completions", body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["code"] == code and error["message"]


def test_completion_bounds(server: ServerProcess) -> None:
    for body, param in (({"model": "yes", "prompt": ""}, "prompt"), ({"model": "yes", "prompt": "x", "echo": True}, "echo"),
                        ({"model": "yes", "prompt": ["a", "b"]}, "prompt")):
        response = post(server, "/v1/completions", body)
        assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_api_key_and_body_size(server: ServerProcess) -> None:
    wrong = post(server, "/v1/chat/completions", CHAT, {"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert post(server, "/v1/chat/completions", CHAT, {}).status_code == 401
    with pytest.raises(openai.AuthenticationError):
        client(server, "nope").models.list()
    huge = post(server, "/v1/completions", {"model": "yes", "prompt": "x" * 1_100_000})
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "body_too_large"


def test_a_dropped_stream_does_not_disturb_the_server(server: ServerProcess) -> None:
    body = {"model": "no", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 64, "stream": True}
    with httpx.Client(timeout=60, headers=KEY) as http:
        for _ in range(3):
            with http.stream("POST", f"{server.base_url}/v1/chat/completions", json=body) as response:
                assert response.status_code == 200
                assert next(response.iter_lines()).startswith("data: ")  # hang up after the first chunk
    reply = client(server).chat.completions.create(model="yes", messages=[{"role": "user", "content": "hi"}],
                                                   max_tokens=4, temperature=0)
    assert reply.choices[0].message.content
    health = httpx.get(f"{server.base_url}/health").json()
    assert health["queued"] == 0 and health["in_flight"] == 0


def test_other_addresses_need_an_api_key(tiny_runs: dict[str, Path]) -> None:
    done = subprocess.run([sys.executable, "-m", "tunesmith", "serve", str(tiny_runs["yes"]), "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --host 0.0.0.0 is reachable from other machines: pass --api-key KEY (or bind 127.0.0.1)"
    )


def test_adapters_must_share_base_and_method(tiny_runs: dict[str, Path], tiny_gpt2: Path) -> None:
    from tunesmith.errors import UserError
    from tunesmith.serve.target import load_served

    with pytest.raises(UserError, match="NAME=RUN"):
        from tunesmith.cli import _adapters

        _adapters(["broken"])
    with pytest.raises(UserError, match="needs TARGET to be a run folder"):
        load_served(str(tiny_gpt2), {"no": str(tiny_runs["no"])})
    with pytest.raises(UserError, match="that name is TARGET's own model id"):
        load_served(str(tiny_runs["yes"]), {"yes": str(tiny_runs["no"])})


def test_adapters_with_another_chat_format_are_refused(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    from tunesmith.errors import UserError
    from tunesmith.serve.target import load_served

    other = tmp_path / "other"
    shutil.copytree(tiny_runs["no"], other)
    config = other / "config.yaml"
    config.write_text(config.read_text().replace("system_prompt: null", "system_prompt: Be terse."))
    with pytest.raises(UserError, match="data.system_prompt is 'Be terse.'"):
        load_served(str(tiny_runs["yes"]), {"other": str(other)})
