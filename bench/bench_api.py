"""Throughput and latency of the HTTP API on loopback, and what abuse costs it (issue 13).

Starts ``kefu serve`` in a subprocess (its store in a temporary data dir, the index shared with
``settings.index_dir`` so it is embedded only once), creates keys, warms up, then runs:

1. ``/v1/check`` and ``/v1/drafts`` alone (script backend), each request with the next of 40 keys;
2. ``/v1/drafts`` alone and while six anonymous ``/readyz`` loops run, side by side
   (goal: >= 90% of the throughput alone);
3. a normal client drafting short messages at a steady pace, alone and while four clients, each
   with its own key, send maximal messages (``KEFU_MAX_MESSAGE_CHARS`` characters) back to back:
   the normal draft's p99 side by side (goal: <= 300 ms). The abusive clients wait ``Retry-After``
   on a 429 (``--abusers-ignore-retry-after`` to hammer instead); their 200s and 429s are printed.

Each side-by-side pair runs in ``--rounds`` rounds of two windows in ABBA order (alone then
beside, beside then alone, ...), so load from other processes on the machine falls on both sides alike.

Every normal request must answer 200: any other answer counts as an error and makes the exit
code 1 (a missed goal is printed, not an exit code).

    .venv/bin/python bench/bench_api.py                  # the defaults, as `make bench-api`
    .venv/bin/python bench/bench_api.py --workers 2      # two server processes
    .venv/bin/python bench/bench_api.py --requests 500 --seconds 10

Goals on a 2-core machine: /v1/check >= 300 req/s, /v1/drafts >= 40 req/s, p99 < 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import Settings, get_settings
from agent.corpus import fill
from agent.store import open_store
from agent.workspace import workspace_for

HOST = "127.0.0.1"
GOALS = {"/v1/check": 300.0, "/v1/drafts": 40.0}
P99_GOAL_MS = 250.0
READYZ_SHARE_GOAL = 0.90
ABUSED_P99_GOAL_MS = 300.0


@dataclass
class Phase:
    path: str
    bodies: list[bytes]
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def p99_ms(self) -> float:
        return percentile([x * 1000 for x in self.latencies], 0.99)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def request_bytes(path: str, body: bytes | None, key: str | None, port: int) -> bytes:
    method = "GET" if body is None else "POST"
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
    if key:
        head += f"Authorization: Bearer {key}\r\n"
    if body is None:
        return (head + "\r\n").encode()
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def connection(phase: Phase, port: int, keys: Sequence[str], queue: asyncio.Queue[int], deadline: float) -> None:
    """Send queued requests on one keep-alive connection, each with the next key (many agents' tools)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while time.monotonic() < deadline:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            raw = request_bytes(phase.path, phase.bodies[i % len(phase.bodies)], keys[i % len(keys)], port)
            start = time.perf_counter()
            writer.write(raw)
            status, _, body = await read_response(reader)
            phase.latencies.append(time.perf_counter() - start)
            if status != 200:
                phase.errors.append(f"{status}: {body[:200]!r}")
    finally:
        writer.close()


async def run_phase(phase: Phase, port: int, keys: Sequence[str], count: int, seconds: float) -> None:
    """``count`` requests (or ``seconds``) over ``phase.concurrency`` connections, keys in turn."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    start = time.perf_counter()
    deadline = time.monotonic() + seconds
    tasks = [connection(phase, port, keys, queue, deadline) for _ in range(phase.concurrency)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    phase.seconds = time.perf_counter() - start
    phase.errors.extend(repr(r) for r in results if isinstance(r, BaseException))


@dataclass
class Load:
    """Background clients: what they sent and what they got."""

    statuses: dict[int, int] = field(default_factory=dict)

    def count(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


async def loop_client(
    port: int, path: str, body: bytes | None, key: str | None, stop: asyncio.Event, load: Load, honour: bool
) -> None:
    """Send the same request back to back until ``stop``; on a 429 wait Retry-After when ``honour``."""
    reader, writer = await asyncio.open_connection(HOST, port)
    raw = request_bytes(path, body, key, port)
    try:
        while not stop.is_set():
            writer.write(raw)
            status, headers, _ = await read_response(reader)
            load.count(status)
            if status == 429 and honour:
                wait = float(headers.get("retry-after", "1"))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
    finally:
        writer.close()


async def paced_client(phase: Phase, port: int, key: str, per_s: float, seconds: float) -> None:
    """One client drafting ``per_s`` normal messages a second for ``seconds`` (an agent at work)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    start = time.perf_counter()
    try:
        for i in range(int(per_s * seconds)):
            due = start + i / per_s
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sent = time.perf_counter()
            writer.write(request_bytes(phase.path, phase.bodies[i % len(phase.bodies)], key, port))
            status, _, body = await read_response(reader)
            phase.latencies.append(time.perf_counter() - sent)
            if status != 200:
                phase.errors.append(f"{status}: {body[:200]!r}")
    finally:
        writer.close()
    phase.seconds = time.perf_counter() - start


async def under_background(
    port: int, clients: Sequence[tuple[str, bytes | None, str | None]], honour: bool, work: Coroutine[Any, Any, None]
) -> Load:
    """Run ``work`` (a coroutine) while ``clients`` loop in the background; return what they got."""
    stop = asyncio.Event()
    load = Load()
    background = [asyncio.create_task(loop_client(port, p, b, k, stop, load, honour)) for p, b, k in clients]
    await asyncio.sleep(0.5)  # the background is running before the measurement starts
    await work
    stop.set()
    await asyncio.gather(*background, return_exceptions=True)
    return load


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(phase: Phase, label: str = "", goal: float | None = None) -> None:
    n = len(phase.latencies)
    ms = [x * 1000 for x in phase.latencies]
    p50, p95, p99 = (percentile(ms, q) for q in (0.50, 0.95, 0.99))
    goal = GOALS[phase.path] if goal is None else goal
    met = phase.rate >= goal and p99 < P99_GOAL_MS and not phase.errors
    print(
        f"{phase.path + label:<24} {n:>6} req in {phase.seconds:5.1f}s  {phase.rate:7.1f} req/s  "
        f"p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms  max {max(ms, default=0):6.1f} ms  "
        f"errors {len(phase.errors)}  concurrency {phase.concurrency}  "
        f"goal >= {goal:.0f} req/s, p99 < {P99_GOAL_MS:.0f} ms: {'met' if met else 'MISSED'}"
    )
    for error in phase.errors[:5]:
        print(f"    error: {error}")


def bodies(settings: Settings) -> tuple[list[bytes], list[bytes], bytes]:
    """Drafts to check (every script's reply, filled), messages to draft from, and one maximal message."""
    workspace = workspace_for(settings)
    scripts = workspace.corpus.scripts
    values = workspace.shop("default").vars
    replies = [fill(s.reply, values) for s in scripts]
    questions = [q for s in scripts for q in s.questions]
    questions = questions[:: max(1, len(questions) // 200)]
    check = [json.dumps({"draft": r}, ensure_ascii=False).encode() for r in replies]
    draft = [json.dumps({"query": q, "backend": "script"}, ensure_ascii=False).encode() for q in questions]
    text = "".join(questions)
    while len(text) < settings.max_message_chars:
        text += text
    maximal = json.dumps({"query": text[: settings.max_message_chars], "backend": "script"}, ensure_ascii=False)
    return check, draft, maximal.encode()


def build_index(env: dict[str, str]) -> None:
    kefu = Path(sys.executable).parent / "kefu"
    print("index: bringing the shared index up to date (the first run embeds every script) ...", flush=True)
    subprocess.run([str(kefu), "index"], env=env, check=True)


def start_server(env: dict[str, str], port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    kefu = Path(sys.executable).parent / "kefu"
    command = [str(kefu), "serve", "--host", HOST, "--port", str(port), "--workers", str(workers), "--no-access-log"]
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


def merged(phases: Sequence[Phase]) -> Phase:
    """Rounds of one condition as one phase: their requests, errors and seconds added up."""
    whole = Phase(phases[0].path, phases[0].bodies, phases[0].concurrency)
    for phase in phases:
        whole.latencies += phase.latencies
        whole.errors += phase.errors
        whole.seconds += phase.seconds
    return whole


def abuse(port: int, keys: list[str], drafts: list[bytes], maximal: bytes, args: argparse.Namespace) -> list[Phase]:
    """Phases 2 and 3, each pair of conditions in ABBA rounds, so that the load of other processes on
    the machine falls on both sides alike."""
    honour = not args.abusers_ignore_retry_after
    keys, abuser_keys = keys[:-4], keys[-4:]
    window = args.seconds / args.rounds
    alone_rounds: list[Phase] = []
    beside_rounds: list[Phase] = []
    probes = Load()
    readyz = [("/readyz", None, None)] * 6
    for n in range(args.rounds):
        for beside_first in (False, True) if n % 2 == 0 else (True, False):  # ABBA: drift cancels
            if beside_first:
                beside_rounds.append(Phase("/v1/drafts", drafts, args.draft_concurrency))
                work = run_phase(beside_rounds[-1], port, keys, args.requests, window)
                for status, count in asyncio.run(under_background(port, readyz, honour, work)).statuses.items():
                    probes.statuses[status] = probes.statuses.get(status, 0) + count
            else:
                alone_rounds.append(Phase("/v1/drafts", drafts, args.draft_concurrency))
                asyncio.run(run_phase(alone_rounds[-1], port, keys, args.requests, window))
    alone, beside = merged(alone_rounds), merged(beside_rounds)
    report(alone, " alone")
    report(beside, " +6 readyz")
    share = beside.rate / alone.rate if alone.rate else 0.0
    verdict = "met" if share >= READYZ_SHARE_GOAL else "MISSED"
    print(
        f"    drafting {alone.rate:.1f} req/s alone, {beside.rate:.1f} req/s beside six anonymous /readyz loops "
        f"({sum(probes.statuses.values())} probes, {probes.statuses}), {args.rounds} ABBA rounds: "
        f"{share:.0%} (goal >= {READYZ_SHARE_GOAL:.0%}): {verdict}"
    )

    window = args.abuse_seconds / args.rounds
    paced_alone: list[Phase] = []
    paced_abused: list[Phase] = []
    got = Load()
    abusers = [("/v1/drafts", maximal, key) for key in abuser_keys]
    for n in range(args.rounds):
        for abused_first in (False, True) if n % 2 == 0 else (True, False):
            if abused_first:
                paced_abused.append(Phase("/v1/drafts", drafts, 1))
                work = paced_client(paced_abused[-1], port, keys[0], args.pace, window)
                for status, count in asyncio.run(under_background(port, abusers, honour, work)).statuses.items():
                    got.statuses[status] = got.statuses.get(status, 0) + count
            else:
                paced_alone.append(Phase("/v1/drafts", drafts, 1))
                asyncio.run(paced_client(paced_alone[-1], port, keys[0], args.pace, window))
    quiet, abused = merged(paced_alone), merged(paced_abused)
    report(quiet, " paced alone", goal=0)
    report(abused, " paced +4 maximal", goal=0)
    p99 = abused.p99_ms()
    verdict = "met" if p99 <= ABUSED_P99_GOAL_MS and not abused.errors else "MISSED"
    print(
        f"    normal draft p99 {quiet.p99_ms():.1f} ms alone, {p99:.1f} ms beside four clients sending "
        f"{args.max_chars}-character messages ({'waiting' if honour else 'ignoring'} Retry-After; "
        f"their answers {got.statuses}) (goal <= {ABUSED_P99_GOAL_MS:.0f} ms): {verdict}"
    )
    return [alone, beside, quiet, abused]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="requests per endpoint (default 3000)")
    parser.add_argument("--seconds", type=float, default=30.0, help="time cap per endpoint (default 30)")
    parser.add_argument("--check-concurrency", type=int, default=8)
    parser.add_argument("--draft-concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="kefu serve --workers (default 1)")
    parser.add_argument("--pace", type=float, default=10.0, help="normal drafts a second beside the abusers")
    parser.add_argument("--abuse-seconds", type=float, default=20.0, help="how long the abusers run")
    parser.add_argument("--abusers-ignore-retry-after", action="store_true", help="abusers hammer on 429")
    parser.add_argument("--skip-abuse", action="store_true", help="only the plain throughput phases")
    parser.add_argument("--rounds", type=int, default=4, help="ABBA rounds per side-by-side comparison")
    args = parser.parse_args(argv)

    settings = get_settings()
    args.max_chars = settings.max_message_chars
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="kefu-bench-api-") as tmp:
        data = Path(tmp)
        env = {**os.environ, "KEFU_DATA_DIR": str(data), "KEFU_BACKEND": "script"}
        if not settings.chroma_host:
            env["KEFU_CHROMA_PATH"] = str(settings.index_dir)
            build_index(env)
        store = open_store(Settings(data_dir=data, corpus_dir=settings.corpus_dir))
        keys = [store.create_key(f"bench-{n}") for n in range(40 + 4)]  # 40 agents' tools, 4 abusers
        store.close()
        port = free_port()
        log = data / "server.log"
        proc = start_server(env, port, args.workers, log)
        try:
            wait_ready(proc, port, log)
            check_bodies, draft_bodies, maximal = bodies(settings)
            phases = [
                Phase("/v1/check", check_bodies, args.check_concurrency),
                Phase("/v1/drafts", draft_bodies, args.draft_concurrency),
            ]
            normal_keys = keys[:-4]
            print(f"kefu serve --workers {args.workers} on {HOST}:{port}, {os.cpu_count()} CPUs")
            for phase in phases:
                warm = Phase(phase.path, phase.bodies, phase.concurrency)
                asyncio.run(run_phase(warm, port, normal_keys, 50, args.seconds))
                asyncio.run(run_phase(phase, port, normal_keys, args.requests, args.seconds))
                report(phase)
            if not args.skip_abuse:
                phases += abuse(port, keys, draft_bodies, maximal, args)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 1 if any(phase.errors for phase in phases) else 0


if __name__ == "__main__":
    sys.exit(main())
