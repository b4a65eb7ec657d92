"""The index on a Chroma server (``chroma run``), reached through KEFU_CHROMA_HOST."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import chromadb
import pytest

from agent.config import get_settings
from agent.retrieval import HashEmbedder
from agent.retrieval.chroma import chroma_settings, collection_name
from agent.retrieval.service import get_retriever, ping_store, update_index
from agent.workspace import load_workspace
from tests.test_retrieval import write_corpus

CHROMA = Path(sys.executable).parent / "chroma"
STARTUP_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _heartbeat(port: int) -> bool:
    try:
        client = chromadb.HttpClient(host="127.0.0.1", port=port, settings=chroma_settings())
        client.heartbeat()
    except Exception:
        return False
    return True


@pytest.fixture
def chroma_port(tmp_path: Path) -> Iterator[int]:
    """A ``chroma run`` server on a free loopback port, stopped at the end."""
    port = _free_port()
    log_path = tmp_path / "chroma.log"
    with log_path.open("wb") as log:
        args = [str(CHROMA), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(tmp_path / "db")]
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + STARTUP_S
            while not _heartbeat(port):
                assert proc.poll() is None, f"chroma run exited: {log_path.read_text(errors='replace')[-2000:]}"
                assert time.monotonic() < deadline, f"no heartbeat after {STARTUP_S:.0f}s"
                time.sleep(0.2)
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_the_index_lives_on_the_chroma_server(
    chroma_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEFU_CORPUS_DIR", str(write_corpus(tmp_path / "corpus")))
    monkeypatch.setenv("KEFU_CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("KEFU_CHROMA_PORT", str(chroma_port))
    get_settings.cache_clear()
    settings = get_settings()
    embedder = HashEmbedder()
    workspace = load_workspace(settings)
    ping_store(settings)  # the configured store is the server, and it answers

    hits = get_retriever(settings, workspace, embedder=embedder).retrieve("用哪家快递", 3)
    assert hits[0].script_id == "shipping.courier"

    server = chromadb.HttpClient(host="127.0.0.1", port=chroma_port, settings=chroma_settings())
    assert collection_name(embedder) in [c.name for c in server.list_collections()]
    assert not settings.index_dir.exists(), "nothing is written to the local index when a server is set"
    again = update_index(settings, workspace, embedder=embedder)
    assert (again.embedded, again.unchanged) == (0, 5)
