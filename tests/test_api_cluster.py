"""Servers as a deployment sees them: killed mid-load, and two instances behind one store and one Chroma."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agent.config import REPO_ROOT
from agent.corpus import load_corpus
from agent.store import feedback_stats, open_store
from tests.test_api import ApiServer, free_port, start_server

pytestmark = pytest.mark.slow

CHROMA = Path(sys.executable).parent / "chroma"


def questions(n: int) -> list[str]:
    scripts = load_corpus(REPO_ROOT / "corpus").scripts
    return [scripts[i % len(scripts)].questions[0] for i in range(n)]


def serve_drafts(server: ApiServer, key: str, n: int) -> list[str]:
    with server.client(key) as client:
        return [client.post("/v1/drafts", json={"query": q}).json()["draft_id"] for q in questions(n)]


def test_acknowledged_feedback_survives_kill_9(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        key = server.store().create_key("crash-test")
        draft_ids = serve_drafts(server, key, 8)
        acked: list[tuple[int, str]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def send(worker: int) -> None:
            with server.client(key) as client:
                i = 0
                while not stop.is_set():
                    draft_id = draft_ids[(worker + i) % len(draft_ids)]
                    i += 1
                    body = {"draft_id": draft_id, "action": "accepted", "revise": True}  # each a new revision
                    try:
                        response = client.post("/v1/feedback", json=body)
                    except httpx.TransportError:
                        return
                    if response.status_code == 201:
                        with lock:
                            acked.append((response.json()["feedback_id"], draft_id))

        threads = [threading.Thread(target=send, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(acked) < 150 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.proc.send_signal(signal.SIGKILL)  # mid-load: the senders are still sending
        server.proc.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=10)
    finally:
        server.stop()

    assert len(acked) >= 150
    store = open_store(server.settings())
    stored = {(row["id"], row["draft_id"]) for row in store.conn().execute("SELECT id, draft_id FROM feedback")}
    store.close()
    assert set(acked) <= stored


@dataclass
class Chroma:
    port: int
    proc: subprocess.Popen[bytes]


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[Chroma]:
    port = free_port()
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen(
        [str(CHROMA), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(tmp_path / "chroma-server")],
        stdout=log,
        stderr=log,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=2, trust_env=False) as client:
            while time.monotonic() < deadline:
                assert proc.poll() is None, (tmp_path / "chroma.log").read_text()[-2000:]
                try:
                    if client.get(f"http://127.0.0.1:{port}/api/v2/heartbeat").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
        yield Chroma(port, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_two_instances_behave_as_one(tmp_path: Path, chroma_server: Chroma) -> None:
    env = {"KEFU_CHROMA_HOST": "127.0.0.1", "KEFU_CHROMA_PORT": str(chroma_server.port)}
    a = start_server(tmp_path, env)
    b = start_server(tmp_path, env)
    try:
        store = a.store()
        key = store.create_key("shared")  # created once, through one store
        served_by_a = serve_drafts(a, key, 2)
        served_by_b = serve_drafts(b, key, 1)
        with b.client(key) as client:
            for draft_id in served_by_a:
                sent = client.post("/v1/feedback", json={"draft_id": draft_id, "action": "rejected", "reason": "x"})
                assert sent.status_code == 201, sent.text
        with a.client(key) as client:
            sent = client.post("/v1/feedback", json={"draft_id": served_by_b[0], "action": "accepted"})
            assert sent.status_code == 201, sent.text

        total = feedback_stats(store)["total"]
        assert (total["drafts"], total["rejected"], total["accepted"]) == (3, 2, 1)
        assert not (tmp_path / "chroma").exists()  # the index is the server's, not a local one

        store.revoke_key("shared")
        for server in (a, b):
            with server.client(key) as client:
                assert client.post("/v1/check", json={"draft": "x"}).status_code == 403
        probe = store.create_key("probe")
        store.close()

        chroma_server.proc.terminate()  # the shared index goes away: neither instance is ready
        chroma_server.proc.wait(timeout=20)
        time.sleep(0.3)  # past the readiness interval the servers run with
        for server in (a, b):
            with server.client(probe) as client:
                ready = client.get("/readyz")
                assert ready.status_code == 503, ready.text
                assert ready.json()["checks"]["index"] != "ok"
                assert client.get("/healthz").status_code == 200
            with server.client() as anonymous:
                assert anonymous.get("/readyz").json() == {"error": {"code": "not_ready", "message": "not ready"}}
    finally:
        a.stop()
        b.stop()
