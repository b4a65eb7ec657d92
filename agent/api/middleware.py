"""What every request passes before a route runs: probes answered cheaply, the body's size, encoding, depth.

* ``GET /healthz`` and an anonymous ``GET /readyz`` with a fresh cached result are answered here,
  before routing, dependency injection and validation. Past :data:`PROBES_PER_S` anonymous probes a
  second (all callers together) each answer waits :data:`PROBE_PAUSE_S` first, costing no CPU:
  monitors probing in a tight loop are slowed to a trickle and drafting keeps its CPU, while a
  real health checker (one probe every few seconds) never waits.
* A body over ``limit`` bytes is a 413, whether it declares its length or streams.
* A JSON body that is not UTF-8, or nests deeper than :data:`MAX_DEPTH`, is a 400 ``invalid_json``
  (the JSON parser would otherwise spend its recursion on it).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from agent.api.errors import error_response
from agent.api.readiness import Ready

MAX_DEPTH = 32
_STRUCTURE = re.compile(rb'["\\\[\]{}]')


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in ``body`` (strings skipped; no full parse)."""
    depth = deepest = 0
    in_string = escaped = False
    for match in _STRUCTURE.finditer(body):
        ch = match.group()
        if in_string:
            if escaped:  # the character after a backslash
                escaped = False
            elif ch == b"\\":
                escaped = body[match.end() : match.end() + 1] in (b"\\", b'"')
            elif ch == b'"':
                in_string = False
            continue
        if ch == b'"':
            in_string = True
        elif ch in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif ch in (b"]", b"}"):
            depth -= 1
    return deepest


def body_problem(body: bytes) -> str | None:
    """Why ``body`` is not JSON kefu reads, or None."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not valid JSON: it is not UTF-8 text"
    if (body.count(b"[") + body.count(b"{")) > MAX_DEPTH and json_depth(body) > MAX_DEPTH:
        return f"the body is not valid JSON for kefu: nested deeper than {MAX_DEPTH} levels"
    return None


class BodyGuard:
    """Answer 413 to a body over ``limit`` bytes and 400 to one that is not UTF-8 or too deep."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._reject(scope, receive, send, 413 if declared.isdigit() else 400)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._reject(scope, receive, send, 413)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = body_problem(body) if body else None
        if problem is not None:
            await error_response(400, problem, "invalid_json")(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, status: int) -> None:
        message = (
            f"the request body is over the limit of {self.limit} bytes (KEFU_MAX_BODY_BYTES)"
            if status == 413
            else "Content-Length is not a number"
        )
        await error_response(status, message)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> AsgiMessage:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


PROBES_PER_S = 5
PROBE_PAUSE_S = 0.5
_JSON = [(b"content-type", b"application/json")]
_HEALTHY = json.dumps({"status": "ok"}).encode()
_NOT_READY = json.dumps({"error": {"code": "not_ready", "message": "not ready"}}).encode()
_KEY_HEADERS = (b"authorization", b"x-api-key")


class ProbeFastPath:
    """Answer ``GET /healthz`` and anonymous ``GET /readyz`` (while ``fresh()`` has a result) directly."""

    def __init__(self, app: ASGIApp, fresh: Callable[[], Ready | None]) -> None:
        self.app = app
        self.fresh = fresh
        self._tokens = float(PROBES_PER_S)
        self._stamp = time.monotonic()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = scope["path"]
            if path == "/healthz":
                await self._pace()
                await _send(send, 200, _HEALTHY)
                return
            if path == "/readyz" and not any(name in _KEY_HEADERS for name, _ in scope["headers"]):
                ready = self.fresh()
                if ready is not None:
                    await self._pace()
                    body = json.dumps({"status": ready.status}).encode() if ready.serving else _NOT_READY
                    await _send(send, 200 if ready.serving else 503, body)
                    return
        await self.app(scope, receive, send)

    async def _pace(self) -> None:
        """Wait :data:`PROBE_PAUSE_S` when anonymous probes come faster than :data:`PROBES_PER_S`."""
        now = time.monotonic()
        self._tokens = min(float(PROBES_PER_S), self._tokens + (now - self._stamp) * PROBES_PER_S)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return
        await asyncio.sleep(PROBE_PAUSE_S)


async def _send(send: Send, status: int, body: bytes) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
