"""Issue 13 through the API: no personal-data value reaches the database file, the server's log or the LLM.

A real uvicorn (access log on, level info) drafts with the LLM backend against the loopback fake
OpenAI server, which records every prompt. Each personal-data case of tests/data/pii_cases.jsonl
is sent as the message and as an earlier turn, then as the agent's edited text and as the reason
of a rejection, and searched for (as typed and width-folded) in the database file with its WAL, the
server's log, every prompt the fake LLM received, and the responses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.redact import matching_form
from tests.fakes.fixtures import FAKE_KEY, FAKE_MODEL
from tests.fakes.openai_server import FakeOpenAIServer
from tests.test_api import ApiServer, start_server
from tests.test_redact import PERSONAL
from tests.test_store import all_text

pytestmark = pytest.mark.slow

REPLY = json.dumps({"draft": "您好，已经为您记录，马上为您处理。", "is_refusal": False, "cited_ids": []})


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer().start()
    server.always(REPLY)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pii_server(tmp_path_factory: pytest.TempPathFactory, llm: FakeOpenAIServer) -> Iterator[ApiServer]:
    env = {"KEFU_LLM_BASE_URL": llm.base_url, "KEFU_LLM_API_KEY": FAKE_KEY, "KEFU_LLM_MODEL": FAKE_MODEL}
    running = start_server(tmp_path_factory.mktemp("pii"), env, log_level="info")
    yield running
    running.stop()


def without_client_ports(log: str) -> str:
    """The log without the access log's client addresses (a port such as 47290 holds the code 4729)."""
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", log)


def forms(secret: str) -> set[str]:
    """The value as typed and width-folded (what a careless store would keep)."""
    return {secret, matching_form(secret)[0]}


def test_no_personal_data_in_the_store_the_logs_or_the_prompts(pii_server: ApiServer, llm: FakeOpenAIServer) -> None:
    store = pii_server.store()
    key = store.create_key("pii-tool")
    responses: list[str] = []
    with pii_server.client(key) as client:
        for case in PERSONAL:
            body = {"query": case["text"], "backend": "openai", "turns": [{"role": "customer", "text": case["text"]}]}
            drafted = client.post("/v1/drafts", json=body)
            assert drafted.status_code == 200, drafted.text
            assert drafted.json()["backend"] == "openai", drafted.text
            draft_id = drafted.json()["draft_id"]
            edited = {"draft_id": draft_id, "action": "edited", "final_text": "已处理：" + case["text"]}
            rejected = {"draft_id": draft_id, "action": "rejected", "reason": case["text"], "revise": True}
            for sent in (client.post("/v1/feedback", json=edited), client.post("/v1/feedback", json=rejected)):
                assert sent.status_code == 201, sent.text
            searched = client.get("/v1/phrases", params={"search": case["text"][:200]})
            assert searched.status_code == 200, searched.text
            responses.append(drafted.text)
    store.close()
    pii_server.stop()  # the log is complete and the WAL checkpointed

    prompts = "\n".join(r.messages_text() for r in llm.chat_requests)
    assert len(llm.chat_requests) >= len(PERSONAL)
    places = {
        "database": all_text(pii_server.data_dir / "kefu.db"),
        "server log": without_client_ports(pii_server.log.read_text(encoding="utf-8")),
        "prompts": prompts,
        "responses": "\n".join(responses),
    }
    assert "GET /v1/phrases?search=" in places["server log"]  # the access log was on
    for case in PERSONAL:
        for secret in case["secrets"]:
            for form in forms(secret):
                for place, text in places.items():
                    assert form not in text, f"{form!r} of {case['text']!r} found in the {place}"
    assert "【手机号】" in prompts and "【密码】" in places["database"]


def test_the_store_file_is_private(pii_server: ApiServer) -> None:
    db = pii_server.data_dir / "kefu.db"
    assert db.stat().st_mode & 0o777 == 0o600
    assert all(p.stat().st_mode & 0o077 == 0 for p in Path(pii_server.data_dir).glob("kefu.db*"))


def test_a_phone_in_a_query_string_is_masked_in_the_access_log(tmp_path: Path) -> None:
    server = start_server(tmp_path, log_level="info")
    try:
        key = server.store().create_key("log-tool")
        with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, trust_env=False) as client:
            assert client.get("/v1/phrases", params={"search": "电话 138 1234 5678"}).status_code == 200
    finally:
        server.stop()
    log = without_client_ports(server.log.read_text(encoding="utf-8"))
    assert "search=电话 【手机号】" in log and "5678" not in log
