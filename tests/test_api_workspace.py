"""Issue 11 through the API: a broken save never fails a request; the fix is swapped in.

A real server drafts from a private workspace while clients keep it busy. An invalid YAML and then
an empty file are saved over a script file: every answer stays 200 (the last good snapshot serves),
``/readyz`` says degraded and names the file (details for keyed callers only). Saving a fixed file
with a changed reply swaps the new snapshot in. No 5xx at any point.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from agent.workspace import init_workspace
from tests.test_api import start_server

pytestmark = pytest.mark.slow

SCRIPT_FILE = Path("corpus/scripts/greeting.yaml")
SCRIPT_ID = "greeting.hello"


def wait_for(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_broken_saves_keep_serving_the_last_good_snapshot(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    init_workspace(root)
    env = {
        "KEFU_WORKSPACE": str(root),
        "KEFU_CORPUS_DIR": str(root / "corpus"),
        "KEFU_PROMPTS_DIR": str(root / "prompts"),
    }
    (tmp_path / "data").mkdir()
    server = start_server(tmp_path / "data", env)
    statuses: Counter[int] = Counter()
    stop = threading.Event()
    target = root / SCRIPT_FILE
    good = target.read_text(encoding="utf-8")
    try:
        key = server.store().create_key("workspace-tool")

        def load() -> None:
            with server.client(key) as client:
                while not stop.is_set():
                    for response in (
                        client.post("/v1/drafts", json={"query": "在吗"}),
                        client.post("/v1/check", json={"draft": "您好，今天下单今天发货。"}),
                        client.get(f"/v1/scripts/{SCRIPT_ID}"),
                        client.get("/readyz"),
                    ):
                        statuses[response.status_code] += 1

        workers = [threading.Thread(target=load) for _ in range(3)]
        for worker in workers:
            worker.start()

        with server.client(key) as keyed, server.client() as anonymous:

            def workspace_state() -> str:
                state: str = keyed.get("/readyz").json()["checks"]["workspace"]
                return state

            assert workspace_state() == "ok"
            reply = keyed.get(f"/v1/scripts/{SCRIPT_ID}").json()["reply"]

            target.write_text("category: greeting\nscripts: [\n  - id: oops\n", encoding="utf-8")
            wait_for(lambda: workspace_state() != "ok")
            degraded = keyed.get("/readyz").json()
            assert degraded["status"] == "degraded"
            assert "greeting.yaml" in degraded["checks"]["workspace"]
            assert str(root) not in str(degraded)
            assert anonymous.get("/readyz").json() == {"status": "degraded"}  # no details without a key
            assert keyed.get(f"/v1/scripts/{SCRIPT_ID}").json()["reply"] == reply

            target.write_text("", encoding="utf-8")
            wait_for(lambda: "greeting.yaml" in workspace_state() and "YAML" not in workspace_state())
            assert "corpus/scripts/greeting.yaml: field" in workspace_state()
            assert keyed.post("/v1/drafts", json={"query": "在吗"}).status_code == 200

            target.write_text(good.replace(reply[:8], "您好呀，" + reply[:8], 1), encoding="utf-8")
            wait_for(lambda: workspace_state() == "ok")
            assert keyed.get(f"/v1/scripts/{SCRIPT_ID}").json()["reply"].startswith("您好呀，")
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    finally:
        stop.set()
        server.stop()
    assert statuses and set(statuses) == {200}, statuses
    assert statuses[200] > 40


def test_a_shop_name_of_251_characters_is_a_4xx(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        key = server.store().create_key("shop-tool")
        with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, trust_env=False) as client:
            for response in (
                client.post("/v1/drafts", json={"query": "在吗", "shop": "s" * 251}),
                client.get("/v1/welcome", params={"shop": "s" * 251}),
                client.get("/v1/phrases", params={"shop": "s" * 251}),
            ):
                assert 400 <= response.status_code < 500, response.text
    finally:
        server.stop()
