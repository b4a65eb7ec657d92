"""A fake OpenAI-compatible server on 127.0.0.1 that answers from a scripted queue.

Tests script what the "model" says, one :class:`Reply` per chat call::

    server.enqueue('{"draft": "...", "is_refusal": false, "cited_ids": []}')
    server.enqueue(Reply(status=429, retry_after=0.01), Reply(content="..."))

Every request body is recorded (``server.chat_requests``). A call past the end of the script
gets HTTP 500 with a message naming the call number, and the overrun is recorded so that
:meth:`FakeOpenAIServer.verify` (run by the ``fake_llm`` fixture at teardown) fails the test.
``/v1/embeddings`` answers with deterministic vectors (hashed character n-grams) and never
consumes the chat script.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import socket
import struct
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a completion's content, or an HTTP error, after an optional delay."""

    content: str | None = None
    status: int = 200
    retry_after: float | str | None = None
    delay_s: float = 0.0
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Recorded:
    """A request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    def messages_text(self) -> str:
        """Every message's content joined, for assertions on what the model was told."""
        return "\n".join(str(m.get("content", "")) for m in self.body.get("messages", []))


@dataclass
class _State:
    script: deque[Reply] = field(default_factory=deque)
    repeat: Reply | None = None
    chat: list[Recorded] = field(default_factory=list)
    embeddings: list[Recorded] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


def fake_embedding(text: str, dim: int = 64) -> list[float]:
    """A unit vector from hashed character uni- and bigrams: equal texts, equal vectors."""
    vec = [0.0] * dim
    grams = list(text) + [text[i : i + 2] for i in range(len(text) - 1)]
    for gram in grams:
        digest = hashlib.sha256(gram.encode()).digest()
        vec[int.from_bytes(digest[:4], "little") % dim] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def _completion(reply: Reply, model: str, number: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.content},
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle and delayed ACKs add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # the test output stays quiet
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        recorded = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        if self.path.rstrip("/").endswith("/chat/completions"):
            self._chat(recorded)
        elif self.path.rstrip("/").endswith("/embeddings"):
            self._embeddings(recorded)
        else:
            self._unexpected(f"unexpected POST {self.path}")

    def do_GET(self) -> None:
        self._unexpected(f"unexpected GET {self.path}")

    def _unexpected(self, problem: str) -> None:
        state = self.server.state
        with state.lock:
            state.problems.append(problem)
        self._send(404, {"error": {"message": problem, "type": "fake_server"}})

    def _chat(self, recorded: Recorded) -> None:
        state = self.server.state
        with state.lock:
            state.chat.append(recorded)
            number = len(state.chat)
            reply = state.script.popleft() if state.script else state.repeat
            if reply is None:
                problem = f"fake LLM: chat call #{number} has no scripted reply (script ran out)"
                state.problems.append(problem)
        if reply is None:
            self._send(500, {"error": {"message": problem, "type": "fake_server"}})
            return
        if reply.delay_s and state.stopping.wait(reply.delay_s):
            return
        if reply.status != 200:
            headers = {"Retry-After": str(reply.retry_after)} if reply.retry_after is not None else {}
            message = f"fake LLM: scripted HTTP {reply.status} for call #{number}"
            self._send(reply.status, {"error": {"message": message, "type": "fake_server"}}, headers)
            return
        self._send(200, _completion(reply, str(recorded.body.get("model", "")), number))

    def _embeddings(self, recorded: Recorded) -> None:
        state = self.server.state
        with state.lock:
            state.embeddings.append(recorded)
        inputs = recorded.body.get("input", [])
        texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs]
        as_base64 = recorded.body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vec = fake_embedding(text)
            encoded: Any = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode() if as_base64 else vec
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        usage = {"prompt_tokens": 0, "total_tokens": 0}
        self._send(200, {"object": "list", "data": data, "model": recorded.body.get("model", ""), "usage": usage})

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up (a timeout test): nothing to answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class FakeOpenAIServer:
    """Start with :meth:`start`, script with :meth:`enqueue`, read ``chat_requests``, :meth:`stop`."""

    def __init__(self) -> None:
        self._state = _State()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("fake LLM server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.state = self._state
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._state.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def enqueue(self, *replies: Reply | str) -> None:
        """Add replies to the script; a plain string is a successful completion with that content."""
        with self._state.lock:
            for reply in replies:
                self._state.script.append(Reply(content=reply) if isinstance(reply, str) else reply)

    def always(self, reply: Reply | str) -> None:
        """Answer every call past the script with ``reply`` (benchmarks: no overrun)."""
        self._state.repeat = Reply(content=reply) if isinstance(reply, str) else reply

    @property
    def chat_requests(self) -> list[Recorded]:
        with self._state.lock:
            return list(self._state.chat)

    @property
    def embedding_requests(self) -> list[Recorded]:
        with self._state.lock:
            return list(self._state.embeddings)

    @property
    def problems(self) -> list[str]:
        with self._state.lock:
            return list(self._state.problems)

    def pending(self) -> int:
        with self._state.lock:
            return len(self._state.script)

    def verify(self) -> None:
        """Fail when a call found no scripted reply, or scripted replies were never used."""
        problems = self.problems
        if self.pending():
            problems.append(f"fake LLM: {self.pending()} scripted replies were never requested")
        if problems:
            raise AssertionError("; ".join(problems))
