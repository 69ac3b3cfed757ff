"""The studio's safety rules, attacked over real HTTP on loopback: CSRF, the token, the Host header,
path traversal in run names, check reports and uploads (encoded `..`, absolute paths, backslashes,
symlinks), upload size, trust flags a form cannot turn on, and escaping of every value shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ui.conftest import csrf_of, running_studio
from tunesmith.ui.form import Trust
from tunesmith.ui.security import MAX_UPLOAD_BYTES

HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture
def space(tmp_path: Path) -> tuple[Path, Path]:
    runs, data, outside = tmp_path / "runs", tmp_path / "data", tmp_path / "outside"
    for folder in (runs, data, outside):
        folder.mkdir()
    (outside / "secret").mkdir()
    (outside / "secret" / "config.yaml").write_text("model: {path: secret}\n")
    (outside / "passwd.jsonl").write_text('{"text": "secret"}\n')
    (runs / "escape").symlink_to(outside / "secret")  # a run name that leads outside --runs
    (data / "train.jsonl").write_text(json.dumps({"prompt": "hi", "completion": HOSTILE}) + "\n")
    shown = runs / "shown"
    shown.mkdir()
    (shown / "config.yaml").write_text(f"model: {{path: '{HOSTILE}'}}\ndata: {{train: x.jsonl}}\n")
    (shown / "summary.json").write_text(json.dumps({"status": "finished", "method": HOSTILE, "data_check": [HOSTILE]}))
    return runs, data


def test_state_changes_need_the_csrf_token_and_the_right_host(space: tuple[Path, Path]) -> None:
    with running_studio(*space) as (url, _), httpx.Client() as client:
        refused = client.post(f"{url}/api/runs", json={"values": {}})
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
        wrong = client.post(f"{url}/api/runs", json={"values": {}}, headers={"X-CSRF-Token": "guess"})
        assert wrong.status_code == 403
        token = csrf_of(client, url)
        accepted = client.post(f"{url}/api/runs", json={"values": {}}, headers={"X-CSRF-Token": token})
        assert accepted.status_code == 422  # past the guard, to the form's own check
        rebound = client.get(f"{url}/", headers={"Host": "evil.example:80"})  # a DNS-rebinding page
        assert rebound.status_code == 421


def test_a_token_guards_every_request_when_set(space: tuple[Path, Path]) -> None:
    with running_studio(*space, token="s3cret") as (url, _), httpx.Client() as client:
        assert client.get(f"{url}/").status_code == 401
        assert client.get(f"{url}/?token=wrong").status_code == 401
        first = client.get(f"{url}/?token=s3cret")
        assert first.status_code == 200 and "tunesmith_token" in first.headers["set-cookie"]
        assert "httponly" in first.headers["set-cookie"].lower()
        assert client.get(f"{url}/data").status_code == 200  # the cookie carries it from now on
    with httpx.Client() as client:  # a cookie left by an earlier start must not hide the fresh ?token=
        client.cookies.set("tunesmith_token", "stale")
        with running_studio(*space, token="fresh") as (url, _):
            assert client.get(f"{url}/?token=fresh").status_code == 200


def test_bad_request_bodies_are_one_line_not_a_crash(space: tuple[Path, Path]) -> None:
    runs, data = space
    with running_studio(runs, data) as (url, _), httpx.Client() as client:
        headers = {"X-CSRF-Token": csrf_of(client, url), "Content-Type": "application/json"}
        for route in ("/api/runs", "/api/estimate", "/api/playground", "/api/check", "/api/fix",
                      "/api/feedback/sessions"):
            for body in ("{not json", "[1, 2]", '{"seed": Infinity}'):
                response = client.post(f"{url}{route}", content=body, headers=headers)
                assert response.status_code == 400, (route, body, response.text)
                assert set(response.json()) == {"error"} and "\n" not in response.json()["error"]
        for key in ("method.name.name", "task.name.x", "train.lr.deep"):
            response = client.post(f"{url}/api/runs", headers=headers,
                                   json={"values": {"output.name": "x", "data.train": "train.jsonl", key: "1"}})
            assert response.status_code == 422, (key, response.text)
        assert client.get(f"{url}/api/state/shown").status_code == 403  # /api/ GETs need the header too
        assert client.get(f"{url}/api/state/shown", headers=headers).status_code == 200


def test_only_runs_the_studio_started_are_resumed(space: tuple[Path, Path]) -> None:
    """A run folder from elsewhere is data: its config (output.dir, reward functions, remote code) is never
    run by the studio's Resume button."""
    runs, data = space
    (runs / "shown" / "checkpoints" / "step-2").mkdir(parents=True)
    (runs / "shown" / "summary.json").write_text(json.dumps({"status": "interrupted"}))
    with running_studio(runs, data) as (url, studio), httpx.Client() as client:
        headers = {"X-CSRF-Token": csrf_of(client, url)}
        response = client.post(f"{url}/api/resume/shown", headers=headers)
        assert response.status_code == 400 and "no checkpoint to resume from" in response.json()["error"]
        assert not studio.jobs.workers


@pytest.mark.parametrize(
    "name",
    ["..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/etc/passwd", "%252e%252e%252fescape", "escape", "/etc/passwd",
     "%2E%2E", ".studio", "shown/..%2f..%2fescape", "%2Fetc%2Fpasswd"],
)
def test_run_names_resolve_inside_runs_only(space: tuple[Path, Path], name: str) -> None:
    with running_studio(*space) as (url, _), httpx.Client() as client:
        client.headers["X-CSRF-Token"] = csrf_of(client, url)
        for route in ("runs", "report", "api/state"):
            response = client.get(f"{url}/{route}/{name}")
            assert response.status_code == 404, (route, name, response.text[:200])
            assert "secret" not in response.text
        assert client.get(f"{url}/checks/..%2f..%2f..%2foutside%2fpasswd").status_code == 404


def test_uploads_stay_in_the_studio_with_clean_names(space: tuple[Path, Path]) -> None:
    runs, data = space
    uploads = runs / ".studio" / "data"
    with running_studio(runs, data) as (url, _), httpx.Client() as client:
        headers = {"X-CSRF-Token": csrf_of(client, url)}
        body = b'{"text": "hello"}\n'
        names = {}
        for raw in ("../../evil.jsonl", "%2e%2e%2f%2e%2e%2fevil.jsonl", "/etc/evil.jsonl", "..\\..\\evil.jsonl",
                    ".hidden.jsonl"):
            response = client.put(f"{url}/api/upload", params={"name": raw}, content=body, headers=headers)
            assert response.status_code == 200, response.text
            names[raw] = response.json()["file"]
        stored = sorted(p.name for p in uploads.iterdir())
        assert stored == ["evil-2.jsonl", "evil-3.jsonl", "evil-4.jsonl", "evil.jsonl", "hidden.jsonl"]
        assert not (runs.parent / "evil.jsonl").exists() and not Path("/etc/evil.jsonl").exists()
        # a link planted in the uploads is never written through
        target = runs.parent / "outside" / "victim.jsonl"
        target.write_text("keep me\n")
        (uploads / "planted.jsonl").symlink_to(target)
        response = client.put(f"{url}/api/upload", params={"name": "planted.jsonl"}, content=body, headers=headers)
        assert response.json()["file"] == "uploads/planted-2.jsonl" and target.read_text() == "keep me\n"
        for bad in ("evil.sh", "", "..", "notes.exe"):
            response = client.put(f"{url}/api/upload", params={"name": bad}, content=body, headers=headers)
            assert response.status_code == 400, bad
        big = client.put(f"{url}/api/upload", params={"name": "big.jsonl"}, content=b"x" * (MAX_UPLOAD_BYTES + 1),
                         headers=headers)
        assert big.status_code == 413 and not (uploads / "big.jsonl").exists()
        # a data check reads only the files the studio lists
        outside = client.post(f"{url}/api/check", json={"file": str(runs.parent / "outside" / "passwd.jsonl")},
                              headers=headers)
        assert outside.status_code == 404


def test_a_form_cannot_turn_on_code_execution_or_read_unlisted_data(space: tuple[Path, Path]) -> None:
    runs, data = space
    with running_studio(runs, data) as (url, _), httpx.Client() as client:
        headers = {"X-CSRF-Token": csrf_of(client, url)}
        values = {"output.name": "x", "data.train": "train.jsonl", "method.name": "lora", "task.name": "instruction",
                  "model.trust_remote_code": "true"}
        response = client.post(f"{url}/api/runs", json={"values": values}, headers=headers)
        assert response.status_code == 422
        assert "--trust-remote-code" in " ".join(response.json()["problems"]["model.trust_remote_code"])
        values = {**values, "model.trust_remote_code": "false", "data.train": "../outside/passwd.jsonl"}
        problems = client.post(f"{url}/api/runs", json={"values": values}, headers=headers).json()["problems"]
        assert "not a data file the studio lists" in problems["data.train"][0]
        grpo = {"output.name": "x", "data.train": "train.jsonl", "method.name": "lora", "task.name": "grpo",
                "task.reward_functions": '[{"function": "os:system"}]'}
        problems = client.post(f"{url}/api/runs", json={"values": grpo}, headers=headers).json()["problems"]
        assert any("--allow-imports" in m for ms in problems.values() for m in ms), problems
        for key, value, expected in (
            ("eval.general_data", str(runs.parent / "outside" / "passwd.jsonl"), "not a data file the studio lists"),
            ("model.path", "/etc", "a local model must be in a folder the studio offers"),
            ("model.path", "../outside/secret", "a local model must be in a folder the studio offers"),
            ("model.allow_pickle_weights", "true", "--allow-pickle-weights"),
        ):
            form = {"output.name": "x", "data.train": "train.jsonl", key: value}
            problems = client.post(f"{url}/api/runs", json={"values": form}, headers=headers).json()["problems"]
            assert expected in " ".join(problems[key]), (key, problems)
        ppo = {"output.name": "x", "data.train": "train.jsonl", "task.name": "ppo", "task.reward_model": "/etc"}
        problems = client.post(f"{url}/api/runs", json={"values": ppo}, headers=headers).json()["problems"]
        assert "give the name of a run under" in " ".join(problems["task.reward_model"])
        assert not any((runs / ".studio" / "configs").iterdir())  # nothing refused was written
    with running_studio(runs, data, trust=Trust(trust_remote_code=True)) as (url, _), httpx.Client() as client:
        headers = {"X-CSRF-Token": csrf_of(client, url)}
        values = {"output.name": "x", "data.train": "train.jsonl", "model.trust_remote_code": "true",
                  "train.lr": "-1"}
        problems = client.post(f"{url}/api/runs", json={"values": values}, headers=headers).json()["problems"]
        allowed = " ".join(problems.get("model.trust_remote_code", []))
        assert "--trust-remote-code" not in allowed and "model.revision" in allowed  # the schema's own rule
        assert "greater than 0" in problems["train.lr"][0]


def test_every_value_shown_is_escaped(space: tuple[Path, Path]) -> None:
    with running_studio(*space) as (url, _), httpx.Client() as client:
        headers = {"X-CSRF-Token": csrf_of(client, url)}
        checked = client.post(f"{url}/api/check", json={"file": "train.jsonl"}, headers=headers).json()
        pages = ["/", "/runs/shown", "/data", "/compare?run=shown", "/report/shown", "/feedback", checked["report"]]
        for path in pages:
            response = client.get(f"{url}{path}")
            assert response.status_code == 200 and "<img src=x" not in response.text, path
        assert "&lt;img src=x onerror=" in client.get(f"{url}/runs/shown").text


def test_a_foreign_page_cannot_drive_the_studio(browser: Any, space: tuple[Path, Path], tmp_path: Path) -> None:
    """In the browser: another site's page auto-submits a form to the studio (a CSRF attack: a form
    cannot add the header), and an address bar with an encoded `..` asks for a file outside --runs."""
    import http.server
    import threading

    from tests.ui.conftest import free_port

    runs, data = space
    with running_studio(runs, data) as (url, _):
        attack = tmp_path / "site"
        attack.mkdir()
        (attack / "index.html").write_text(
            f'<form id="f" method="post" action="{url}/api/runs" enctype="text/plain">'
            '<input name=\'{"values": {"output.name": "pwned", "data.train": "train.jsonl"}, "x": "\' value=\'"}\'>'
            '</form><script>document.getElementById("f").submit()</script>')
        port = free_port()
        handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(attack))  # noqa: E731
        site = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=site.serve_forever, daemon=True).start()
        page = browser.new_page()
        try:
            with page.expect_navigation(url=f"{url}/api/runs"):
                page.goto(f"http://127.0.0.1:{port}/index.html")
            assert "CSRF" in page.inner_text("body")
            assert not (runs / "pwned").exists() and not (runs / ".studio" / "configs" / "pwned.yaml").exists()
            response = page.goto(f"{url}/runs/%2e%2e%2f%2e%2e%2foutside%2fsecret")
            assert response is not None and response.status == 404
            assert page.inner_text("body").startswith("no run named") and "model:" not in page.inner_text("body")
        finally:
            page.close()
            site.shutdown()
