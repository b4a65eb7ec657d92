"""Throughput and latency of the HTTP API on loopback: /v1/check and /v1/drafts (script backend).

Starts ``kefu serve`` in a subprocess (its store in a temporary data dir, the index shared
with ``settings.index_dir`` so it is embedded only once), creates a key, warms up, then sends
a bounded number of requests per endpoint from a fixed number of keep-alive connections and
prints requests/s and latency percentiles. Every request must answer 200: any other answer
counts as an error and makes the exit code 1 (a missed goal is printed, not an exit code).
Each phase stops after ``--requests`` requests or ``--seconds`` seconds, whichever comes first.

    .venv/bin/python bench/bench_api.py                  # the defaults, as `make bench-api`
    .venv/bin/python bench/bench_api.py --workers 2      # two server processes
    .venv/bin/python bench/bench_api.py --requests 500 --seconds 10

Goals on a 2-core machine: /v1/check >= 300 req/s, /v1/drafts >= 40 req/s, p99 < 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.config import Settings, get_settings
from agent.corpus import corpus_for, fill, shop_for
from agent.store import open_store

HOST = "127.0.0.1"
GOALS = {"/v1/check": 300.0, "/v1/drafts": 40.0}
P99_GOAL_MS = 250.0


@dataclass
class Phase:
    path: str
    bodies: list[bytes]
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def request_bytes(path: str, body: bytes, key: str, port: int) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return int(status_line.split()[1]), await reader.readexactly(length)


async def connection(phase: Phase, port: int, key: str, queue: asyncio.Queue[int], deadline: float) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while time.monotonic() < deadline:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            raw = request_bytes(phase.path, phase.bodies[i % len(phase.bodies)], key, port)
            start = time.perf_counter()
            writer.write(raw)
            status, body = await read_response(reader)
            phase.latencies.append(time.perf_counter() - start)
            if status != 200:
                phase.errors.append(f"{status}: {body[:200]!r}")
    finally:
        writer.close()


async def run_phase(phase: Phase, port: int, key: str, count: int, seconds: float) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    start = time.perf_counter()
    deadline = time.monotonic() + seconds
    tasks = [connection(phase, port, key, queue, deadline) for _ in range(phase.concurrency)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    phase.seconds = time.perf_counter() - start
    phase.errors.extend(repr(r) for r in results if isinstance(r, BaseException))


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(phase: Phase) -> None:
    n = len(phase.latencies)
    rate = n / phase.seconds if phase.seconds else 0.0
    ms = [x * 1000 for x in phase.latencies]
    p50, p95, p99 = (percentile(ms, q) for q in (0.50, 0.95, 0.99))
    goal = GOALS[phase.path]
    met = rate >= goal and p99 < P99_GOAL_MS and not phase.errors
    print(
        f"{phase.path:<11} {n:>6} req in {phase.seconds:5.1f}s  {rate:7.1f} req/s  "
        f"p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms  max {max(ms, default=0):6.1f} ms  "
        f"errors {len(phase.errors)}  concurrency {phase.concurrency}  "
        f"goal >= {goal:.0f} req/s, p99 < {P99_GOAL_MS:.0f} ms: {'met' if met else 'MISSED'}"
    )
    for error in phase.errors[:5]:
        print(f"    error: {error}")


def bodies(settings: Settings) -> tuple[list[bytes], list[bytes]]:
    """Drafts to check (every script's reply, filled) and messages to draft from (every question)."""
    corpus = corpus_for(settings.corpus_dir)
    shop = shop_for(settings.corpus_dir, "default")
    replies = [fill(s.reply, shop.vars) for s in corpus.scripts]
    questions = [q for s in corpus.scripts for q in s.questions]
    questions = questions[:: max(1, len(questions) // 200)]
    check = [json.dumps({"draft": r}, ensure_ascii=False).encode() for r in replies]
    draft = [json.dumps({"query": q, "backend": "script"}, ensure_ascii=False).encode() for q in questions]
    return check, draft


def build_index(env: dict[str, str]) -> None:
    kefu = Path(sys.executable).parent / "kefu"
    print("index: bringing the shared index up to date (the first run embeds every script) ...", flush=True)
    subprocess.run([str(kefu), "index"], env=env, check=True)


def start_server(env: dict[str, str], port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    kefu = Path(sys.executable).parent / "kefu"
    command = [str(kefu), "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=out)


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kefu serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(f"GET /readyz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"kefu serve not ready after {timeout}s:\n{log.read_text()[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="requests per endpoint (default 3000)")
    parser.add_argument("--seconds", type=float, default=30.0, help="time cap per endpoint (default 30)")
    parser.add_argument("--check-concurrency", type=int, default=8)
    parser.add_argument("--draft-concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="kefu serve --workers (default 1)")
    args = parser.parse_args(argv)

    settings = get_settings()
    with tempfile.TemporaryDirectory(prefix="kefu-bench-api-") as tmp:
        data = Path(tmp)
        env = {**os.environ, "KEFU_DATA_DIR": str(data), "KEFU_BACKEND": "script"}
        if not settings.chroma_host:
            env["KEFU_CHROMA_PATH"] = str(settings.index_dir)
            build_index(env)
        key = open_store(Settings(data_dir=data, corpus_dir=settings.corpus_dir)).create_key("bench")
        port = free_port()
        log = data / "server.log"
        proc = start_server(env, port, args.workers, log)
        try:
            wait_ready(proc, port, log)
            check_bodies, draft_bodies = bodies(settings)
            phases = [
                Phase("/v1/check", check_bodies, args.check_concurrency),
                Phase("/v1/drafts", draft_bodies, args.draft_concurrency),
            ]
            print(f"kefu serve --workers {args.workers} on {HOST}:{port}, {os.cpu_count()} CPUs")
            for phase in phases:
                warm = Phase(phase.path, phase.bodies, phase.concurrency)
                asyncio.run(run_phase(warm, port, key, 50, args.seconds))
                asyncio.run(run_phase(phase, port, key, args.requests, args.seconds))
                report(phase)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 1 if any(phase.errors for phase in phases) else 0


if __name__ == "__main__":
    sys.exit(main())
