"""A workbench app for tests: the real API app (or a bare one while it cannot be built) with the web
UI mounted, the shipped workspace, a hashing embedder (the index builds in seconds) and a small
eval suite of its own; and a uvicorn server on loopback for the browser."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from agent.config import REPO_ROOT, Settings
from agent.drafting.pipeline import Drafter
from agent.retrieval import Embedder, HashEmbedder
from agent.retrieval.service import get_retriever
from agent.store import Store, store_path
from agent.web.mount import mount_web
from agent.web.render import WebConfig
from agent.workspace import load_workspace

SUITE_CASES = 6
SUITE = """name: web
description: A few golden cases for the web tests.
dataset: cases.jsonl
backends: [script]
metrics: [rouge_l, chrf, must_include, tone, refusal, hit_at_k]
k: 5
concurrency: 2
thresholds:
  rouge_l: {max_regression: 0.02}
"""


@dataclass
class Bench:
    app: FastAPI
    settings: Settings
    config: WebConfig

    def store(self) -> Store:
        store = Store(store_path(self.settings), lambda text: text)
        store.migrate()
        return store

    def key(self, name: str, role: str = "agent") -> str:
        store = self.store()
        try:
            return store.create_key(name, role)
        finally:
            store.close()


def write_suite(folder: Path, cases: int = SUITE_CASES) -> Path:
    (folder / "suites").mkdir(parents=True, exist_ok=True)
    lines = (REPO_ROOT / "eval" / "golden.jsonl").read_text(encoding="utf-8").splitlines()[:cases]
    (folder / "suites" / "cases.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "suites" / "web.yaml").write_text(SUITE, encoding="utf-8")
    return folder / "suites"


class _Services:
    """The API's services, reduced to what the web UI uses (while the API app cannot be built)."""

    def __init__(self, settings: Settings, drafter: Drafter) -> None:
        self.settings, self.drafter, self.store = settings, drafter, None

    def db(self) -> Store:
        if self.store is None:
            self.store = Store(store_path(self.settings), lambda text: text)
            self.store.migrate()
        return self.store

    def drafting(self) -> Drafter:
        return self.drafter


def private_workspace(tmp: Path) -> Path:
    """A copy of the shipped workspace: the tests see one version even while its files are edited."""
    root = tmp / "workspace"
    for part in ("corpus", "prompts"):
        shutil.copytree(REPO_ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def build(tmp: Path, configured_embedder: bool = False) -> Bench:
    """The app over a copy of the shipped workspace with its data (store, index, proposals, runs) under ``tmp``.

    The hashing embedder unless ``configured_embedder`` (the bench's choice).
    """
    root = private_workspace(tmp)
    settings = Settings(workspace=root, corpus_dir=root / "corpus", prompts_dir=root / "prompts", data_dir=tmp / "data")
    workspace = load_workspace(settings)
    embedder: Embedder | None = None if configured_embedder else HashEmbedder()
    retriever = get_retriever(settings, workspace, embedder=embedder)
    drafter = Drafter(settings, workspace=workspace, retriever_override=retriever)
    config = WebConfig(suites_dir=write_suite(tmp), runs_dir=tmp / "runs", data_dir=settings.data_dir)
    app: FastAPI
    services: Any
    try:
        from agent.api import create_app

        app = create_app(settings, drafter)
        services = app.state.services
    except ImportError:  # the API package mid-change: a bare app with the same services
        app, services = FastAPI(title="kefu"), _Services(settings, drafter)
        app.state.services = services
    mount_web(app, services, config=config, eval_retriever=retriever, eval_embedder=embedder)
    return Bench(app, settings, config)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """uvicorn on a loopback port in a thread, started and stopped by the test session."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="web-test-server", daemon=True)

    def start(self, timeout: float = 60) -> Server:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the web test server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def older_run(runs_dir: Path, run_id: str) -> str:
    """A copy of run ``run_id`` that did better on its first case (another draft, higher scores): run A."""
    source = runs_dir / run_id
    target = runs_dir / f"{run_id}-older"
    target.mkdir()
    summary = json.loads((source / "summary.json").read_text(encoding="utf-8"))
    summary["run_id"] = target.name
    summary["started_at"] = "2000-01-01T00:00:00+00:00"
    cases = [json.loads(line) for line in (source / "cases.jsonl").read_text(encoding="utf-8").splitlines()]
    first = cases[0]
    first["draft"] = {**first["draft"], "draft": first["golden"]}
    for entry in first["metrics"].values():
        if isinstance(entry.get("value"), (int, float)):
            entry["value"] = 1.0
    for name, entry in summary["metrics"].items():
        values = [c["metrics"][name]["value"] for c in cases if c["metrics"].get(name, {}).get("value") is not None]
        if values:
            entry["mean"] = sum(values) / len(values)
            if "value" in entry:  # the headline the summary carries beside the mean
                entry["value"] = entry["mean"]
    (target / "summary.json").write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    lines = [json.dumps(c, ensure_ascii=False) for c in cases]
    (target / "cases.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target.name
