"""What keeps the studio safe when a browser, or something pretending to be one, talks to it.

- Bound to loopback by default; elsewhere a secret token is required (given with `?token=` once, then
  kept in an HttpOnly, SameSite=Strict cookie).
- Every state-changing request carries the page's CSRF token in a header, which another site's page
  cannot read (same-origin policy) and so cannot forge.
- The Host header must be one the server was bound to (a DNS-rebinding page cannot reach it).
- Names from URLs and uploads become paths only inside the folder they belong to: one safe segment at
  a time, then resolved (symlinks followed) and checked to stay inside.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tunesmith.errors import UserError

SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt")
MAX_UPLOAD_BYTES = 64 * 2**20
TOKEN_COOKIE = "tunesmith_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Refused(Exception):
    """A request the studio will not serve: (HTTP status, one line saying why)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Guard:
    host: str
    port: int
    token: str | None = None  # required on every request when set
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def hosts(self) -> set[str]:
        names = {self.host} | (LOOPBACK if self.host in LOOPBACK | {"0.0.0.0", "::"} else set())
        return {f"{name}:{self.port}" for name in names} | {f"[{name}]:{self.port}" for name in names}

    def check(self, method: str, path: str, host: str, cookie_token: str | None, query_token: str | None,
              csrf_header: str | None) -> None:
        """Refuse what this request may not do. Pages are GETs that change nothing; everything under /api/
        (some GETs there load models or generate) and every other method needs the CSRF header."""
        if self.host not in {"0.0.0.0", "::"} and host not in self.hosts:
            raise Refused(421, f"host {host!r} is not this studio's address")
        if self.token is not None and not any(
            hmac.compare_digest(given.encode(), self.token.encode()) for given in (query_token, cookie_token) if given
        ):  # either will do: a stale cookie from an earlier start must not hide a fresh ?token=
            raise Refused(401, "this studio needs its token: open the URL printed when it started")
        guarded = method not in SAFE_METHODS or path.startswith("/api/")
        if guarded and not hmac.compare_digest((csrf_header or "").encode(), self.csrf.encode()):
            raise Refused(403, "missing or wrong CSRF token: reload the page and try again")


def needs_token(host: str) -> bool:
    return host not in LOOPBACK


def new_token() -> str:
    return secrets.token_urlsafe(24)


def child_path(root: Path, name: str, what: str = "run") -> Path:
    """ROOT/NAME for a NAME taken from a URL, or a Refused(404) that names ROOT. NAME may have several
    segments (a study's trials); each must be a plain name, and the resolved path must stay in ROOT."""
    decoded = unquote(name)  # a second, encoded layer (%252e%252e) must not slip through either
    segments = decoded.split("/")
    if not all(SAFE_SEGMENT.match(s) for s in segments):
        raise Refused(404, f"no {what} named {name!r} under {root}")
    path = root.joinpath(*segments)
    try:
        inside = path.resolve(strict=True).is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside:
        raise Refused(404, f"no {what} named {name!r} under {root}")
    return path


def upload_name(raw: str) -> str:
    """A data file name safe to create: the last path segment, plain characters only, a data suffix."""
    base = unquote(raw).replace("\\", "/").rsplit("/", 1)[-1].strip()
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip("._-")[:100]
    stem, dot, suffix = clean.rpartition(".")
    if not stem or f"{dot}{suffix.lower()}" not in DATA_SUFFIXES:
        raise UserError(f"upload {raw!r}: give a data file ending in {', '.join(DATA_SUFFIXES)}")
    return f"{stem}.{suffix.lower()}"  # the readers choose by suffix, in lower case


MAX_JSON_BYTES = 1_000_000


async def read_body(request: Any, limit: int, what: str = "request body") -> bytes:
    """A request's body, refused (413) as soon as it passes LIMIT bytes, declared or sent."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"{what} over {limit:,} bytes")
    raw = bytearray()
    async for part in request.stream():
        raw += part
        if len(raw) > limit:
            raise Refused(413, f"{what} over {limit:,} bytes")
    return bytes(raw)


async def json_object(request: Any) -> dict[str, Any]:
    """A request's JSON object body (at most MAX_JSON_BYTES), or a Refused(400) saying what is wrong."""
    raw = await read_body(request, MAX_JSON_BYTES)
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "the request body must be a JSON object")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def free_path(folder: Path, name: str) -> Path:
    """FOLDER/NAME, or NAME-2, NAME-3...: an upload never replaces a file (nor follows a planted link)."""
    stem, suffix = name.rsplit(".", 1)
    candidate, number = folder / name, 1
    while candidate.exists() or candidate.is_symlink():
        number += 1
        candidate = folder / f"{stem}-{number}.{suffix}"
    return candidate
