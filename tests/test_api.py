"""The HTTP API on a real uvicorn on loopback: auth, limits, JSON errors, drafts, feedback, redaction.

The session's server runs in a subprocess (``LAUNCH``) with its own data dir, the script
backend, and the hashing fake embedder, so its index builds in a second.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.specs.openapi.checks import positive_data_acceptance

from agent.api import create_app
from agent.cli import main
from agent.config import REPO_ROOT, Settings, get_settings
from agent.drafting.pipeline import Drafter
from agent.retrieval import FakeRetriever
from agent.store import Store, open_store
from tests.test_store import ID_CARD, PASSWORD, PHONE, PII_MESSAGE, all_text

pytestmark = pytest.mark.slow

LAUNCH = textwrap.dedent(
    """
    import sys

    import uvicorn

    from agent.api import create_app
    from agent.config import Settings
    from agent.drafting.pipeline import Drafter
    from agent.retrieval import HashEmbedder
    from agent.retrieval.service import get_retriever
    from agent.workspace import workspace_for

    settings = Settings()
    retriever = get_retriever(settings, workspace_for(settings), embedder=HashEmbedder())
    drafter = Drafter(settings, retriever_override=retriever)
    level = sys.argv[2] if len(sys.argv) > 2 else "warning"
    uvicorn.run(create_app(settings, drafter), host="127.0.0.1", port=int(sys.argv[1]), log_level=level)
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEFU_", "OPENAI_"))}
    env.update(
        HOME=str(data_dir),
        KEFU_DATA_DIR=str(data_dir),
        KEFU_CORPUS_DIR=str(REPO_ROOT / "corpus"),
        KEFU_BACKEND="script",
        KEFU_API_RATE_PER_S="10000",  # the limits have their own tests (test_api_limits.py)
        KEFU_API_BURST="10000",
        KEFU_API_MAX_DRAFTS="64",
        KEFU_API_MAX_LONG_DRAFTS="64",
        KEFU_API_READYZ_INTERVAL_S="0.2",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class ApiServer:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, corpus_dir=REPO_ROOT / "corpus")

    def store(self) -> Store:
        return open_store(self.settings())

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(
    data_dir: Path, env: dict[str, str] | None = None, timeout: float = 90, log_level: str = "warning"
) -> ApiServer:
    """A uvicorn subprocess on a free loopback port, returned once it answers /healthz."""
    port = free_port()
    log = data_dir / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, str(port), log_level],
            env=server_env(data_dir, **(env or {})),
            stdout=out,
            stderr=out,
        )
    server = ApiServer(f"http://127.0.0.1:{port}", data_dir, proc, log)
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.url, timeout=2, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if client.get("/healthz").status_code == 200:
                    return server
            except httpx.TransportError:
                time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server not up after {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    running = start_server(tmp_path_factory.mktemp("api"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def key(db: Store) -> str:
    return db.create_key("session-tool")


@pytest.fixture(scope="session")
def db(server: ApiServer) -> Iterator[Store]:
    store = server.store()
    yield store
    store.close()


@pytest.fixture
def api(server: ApiServer, key: str) -> Iterator[httpx.Client]:
    with server.client(key) as client:
        yield client


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, str]:
    """The response is ``{"error": {"code", "message"}}`` with ``status`` and no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    assert "Traceback" not in response.text and 'File "' not in response.text
    error: dict[str, str] = body["error"]
    return error


# --- operations routes -----------------------------------------------------------------


def test_health_ready_and_docs_need_no_key(server: ApiServer, key: str) -> None:
    with server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready"}  # no details without a key
        assert "swagger" in client.get("/docs").text.lower()
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/v1/drafts", "/v1/check", "/v1/scripts/{script_id}", "/v1/feedback"} <= set(paths)
    with server.client(key) as keyed:
        ready = keyed.get("/readyz").json()
        assert ready == {"status": "ready", "checks": {"workspace": "ok", "index": "ok", "store": "ok"}}


# --- auth ------------------------------------------------------------------------------


def test_missing_unknown_and_revoked_keys(server: ApiServer, db: Store, key: str) -> None:
    path = "/v1/check"
    body = {"draft": "您好"}
    with server.client() as anonymous:
        assert_error(anonymous.post(path, json=body), 401, "unauthorized")
        assert anonymous.post(path, json=body).headers["www-authenticate"] == "Bearer"
        assert_error(anonymous.post(path, json=body, headers={"Authorization": "Bearer kefu_0_x"}), 401)
        assert_error(anonymous.post(path, json=body, headers={"Authorization": f"Basic {key}"}), 401)
        forged = key[:-2] + ("xx" if not key.endswith("xx") else "yy")
        assert_error(anonymous.post(path, json=body, headers={"X-API-Key": forged}), 401)
        assert anonymous.post(path, json=body, headers={"X-API-Key": key}).status_code == 200
        assert anonymous.post(path, json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 200

    doomed = db.create_key("doomed-tool")
    with server.client(doomed) as client:
        assert client.post(path, json=body).status_code == 200
        db.revoke_key("doomed-tool")
        error = assert_error(client.post(path, json=body), 403, "forbidden")
        assert "doomed-tool" in error["message"]


# --- limits and errors -----------------------------------------------------------------


def test_body_over_the_limit_is_413(api: httpx.Client, server: ApiServer) -> None:
    limit = server.settings().max_body_bytes
    big = {"draft": "好" * (limit // 3 + 10)}
    assert len(json.dumps(big, ensure_ascii=False).encode()) > limit
    error = assert_error(api.post("/v1/check", content=json.dumps(big, ensure_ascii=False).encode()), 413)
    assert str(limit) in error["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit still holds while streaming
        yield b'{"draft": "'
        for _ in range(limit // 1000 + 2):
            yield b"a" * 1000
        yield b'"}'

    assert_error(api.post("/v1/check", content=chunks()), 413, "payload_too_large")
    assert api.post("/v1/check", json={"draft": "好" * 100}).status_code == 200


BAD_REQUESTS = [
    ("POST", "/v1/drafts", b"{not json", 400, "invalid_json"),
    ("POST", "/v1/drafts", b"[]", 422, "invalid_request"),
    ("POST", "/v1/drafts", b"{}", 422, "invalid_request"),
    ("POST", "/v1/drafts", b'{"query": "x", "surprise": 1}', 422, "invalid_request"),
    ("POST", "/v1/drafts", b'{"query": "\\ud800"}', 422, "invalid_request"),
    ("POST", "/v1/drafts", b'{"query": "\\u200b \\u0000"}', 422, "empty_message"),
    ("POST", "/v1/drafts", b'{"query": "x", "shop": "nowhere"}', 400, "unknown_shop"),
    ("POST", "/v1/drafts", b'{"query": "x", "backend": "gpt"}', 422, "invalid_request"),
    ("POST", "/v1/drafts", b'{"query": "x", "backend": "openai"}', 422, "invalid_input"),
    ("POST", "/v1/drafts", b'{"query": "x", "order": {"amount": -1}}', 422, "invalid_request"),
    ("POST", "/v1/drafts", b'{"query": "x", "shop": "' + b"s" * 251 + b'"}', 422, "invalid_request"),
    (
        "POST",
        "/v1/drafts",
        b'{"query": "x", "turns": [{"role": "customer", "text": "' + b"a" * 2001 + b'"}]}',
        422,
        None,
    ),
    ("POST", "/v1/drafts", b'{"query": 5}', 422, "invalid_request"),
    ("POST", "/v1/drafts", b'{"query": "\xff\xfe"}', 400, "invalid_json"),
    ("POST", "/v1/drafts", b'{"query": "x", "id": ' + b"[" * 40 + b"]" * 40 + b"}", 400, "invalid_json"),
    ("POST", "/v1/check", b'{"query": "x"}', 422, "invalid_request"),
    ("POST", "/v1/check", b'{"draft": ""}', 422, "invalid_request"),
    ("POST", "/v1/check", b'{"draft": "  \\n "}', 422, "invalid_request"),
    ("POST", "/v1/check", b'{"draft": "x", "declared_refusal": 0}', 422, "invalid_request"),
    ("POST", "/v1/check", b'{"draft": "x", "declared_refusal": "false"}', 422, "invalid_request"),
    ("POST", "/v1/feedback", b'{"draft_id": "x", "action": "accepted", "revise": 1}', 422, "invalid_request"),
    ("POST", "/v1/feedback", b'{"draft_id": "nope", "action": "accepted"}', 404, "not_found"),
    ("POST", "/v1/feedback", b'{"draft_id": "x", "action": "liked"}', 422, "invalid_request"),
    ("POST", "/v1/feedback", b'{"draft_id": "x", "action": "edited"}', 422, "invalid_request"),
    ("POST", "/v1/feedback", b'{"draft_id": "x", "action": "rejected"}', 422, "invalid_request"),
    ("GET", "/v1/scripts/no.such.script", b"", 404, "not_found"),
    ("GET", "/v1/nothing-here", b"", 404, "not_found"),
    ("DELETE", "/v1/drafts", b"", 405, "method_not_allowed"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_REQUESTS)
def test_errors_are_json_with_the_right_status(
    api: httpx.Client, method: str, path: str, body: bytes, status: int, code: str | None
) -> None:
    headers = {"Content-Type": "application/json"} if body else {}
    assert_error(api.request(method, path, content=body, headers=headers), status, code)


def test_invalid_utf8_is_invalid_json(api: httpx.Client) -> None:
    body = b'{"query": "\xff\xfe\xfa"}'
    assert_error(
        api.post("/v1/drafts", content=body, headers={"Content-Type": "application/json"}), 400, "invalid_json"
    )


def test_405_says_what_is_allowed(api: httpx.Client) -> None:
    response = api.delete("/v1/drafts")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_a_crash_is_a_500_without_a_traceback() -> None:
    settings = Settings()
    app = create_app(settings, Drafter(settings, retriever_override=FakeRetriever([[]] * 4)))

    @app.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internals at /srv/kefu/agent/x.py")

    with TestClient(app, raise_server_exceptions=False) as client:
        response: Any = client.get("/v1/boom")  # starlette's httpx response type
    assert_error(response, 500, "internal_error")
    assert "secret" not in response.text and "RuntimeError" not in response.text


# --- drafts, scripts, feedback ---------------------------------------------------------


def test_a_draft_has_the_cli_shape_and_a_draft_id(api: httpx.Client, db: Store) -> None:
    response = api.post("/v1/drafts", json={"query": _a_corpus_question(), "id": "req-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    keys = {"draft_id", "id", "draft", "is_refusal", "status", "citations", "violations", "backend"}
    assert keys | {"fallback_reason", "notes", "timings_ms"} == set(body)
    assert body["id"] == "req-1" and body["backend"] == "script" and body["draft"]
    stored = db.get_draft(body["draft_id"])
    assert stored["draft"] == body["draft"]
    assert stored["cited_ids"] == [c["id"] for c in body["citations"]]
    assert stored["key_name"] == "session-tool"


def _a_corpus_question() -> str:
    from agent.corpus import load_corpus

    return load_corpus(REPO_ROOT / "corpus").scripts[0].questions[1]


def test_script_by_id(api: httpx.Client) -> None:
    from agent.corpus import load_corpus

    script = load_corpus(REPO_ROOT / "corpus").scripts[0]
    body = api.get(f"/v1/scripts/{script.id}").json()
    assert body["id"] == script.id and body["reply"] == script.reply


def test_feedback_round_trip(api: httpx.Client, db: Store) -> None:
    draft_id = api.post("/v1/drafts", json={"query": _a_corpus_question()}).json()["draft_id"]
    sent = api.post("/v1/feedback", json={"draft_id": draft_id, "action": "edited", "final_text": "您好，马上为您处理"})
    assert sent.status_code == 201, sent.text
    record = sent.json()
    assert (record["draft_id"], record["action"], record["revision"], record["replayed"]) == (
        draft_id,
        "edited",
        1,
        False,
    )
    stored = db.feedback_for(draft_id)
    assert [(f["id"], f["action"], f["final_text"], f["key_name"]) for f in stored] == [
        (record["feedback_id"], "edited", "您好，马上为您处理", "session-tool")
    ]


def test_feedback_once_per_draft_then_revisions_and_idempotent_retries(api: httpx.Client, db: Store) -> None:
    draft_id = api.post("/v1/drafts", json={"query": _a_corpus_question()}).json()["draft_id"]
    first = api.post(
        "/v1/feedback", json={"draft_id": draft_id, "action": "accepted"}, headers={"Idempotency-Key": "k-1"}
    )
    retry = api.post(
        "/v1/feedback", json={"draft_id": draft_id, "action": "accepted"}, headers={"Idempotency-Key": "k-1"}
    )
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["feedback_id"] == first.json()["feedback_id"] and retry.json()["replayed"] is True
    assert_error(api.post("/v1/feedback", json={"draft_id": draft_id, "action": "accepted"}), 409, "conflict")
    revised = api.post("/v1/feedback", json={"draft_id": draft_id, "action": "rejected", "reason": "x", "revise": True})
    assert revised.status_code == 201 and revised.json()["revision"] == 2
    assert [f["revision"] for f in db.feedback_for(draft_id)] == [1, 2]


def test_feedback_only_from_the_key_that_drafted(api: httpx.Client, server: ApiServer, db: Store) -> None:
    draft_id = api.post("/v1/drafts", json={"query": _a_corpus_question()}).json()["draft_id"]
    with server.client(db.create_key("another-tool")) as other:
        error = assert_error(other.post("/v1/feedback", json={"draft_id": draft_id, "action": "accepted"}), 404)
    assert draft_id in error["message"]
    assert db.feedback_for(draft_id) == []


def test_personal_data_never_reaches_the_draft_or_the_store(api: httpx.Client, db: Store) -> None:
    response = api.post("/v1/drafts", json={"query": PII_MESSAGE})
    assert response.status_code == 200, response.text
    draft_id = response.json()["draft_id"]
    sent = api.post(
        "/v1/feedback",
        json={"draft_id": draft_id, "action": "rejected", "reason": f"客户手机{PHONE}，密码是{PASSWORD}"},
    )
    assert sent.status_code == 201, sent.text
    stored = all_text(db.path)
    for secret in (PHONE, ID_CARD, PASSWORD):
        assert secret not in response.text
        assert secret not in stored
    assert draft_id in stored


def test_check_reports_violations(api: httpx.Client) -> None:
    bad = api.post("/v1/check", json={"draft": "亲，这个价格是最低的，但是可以送您小礼物。"}).json()
    assert bad["ok"] is False
    assert "contains_danshi" in {v["rule"] for v in bad["violations"]}
    good = api.post("/v1/check", json={"draft": "您好，这款今天下单当天发货。"}).json()
    assert (good["ok"], good["violations"]) == (True, [])


# --- the OpenAPI contract, fuzzed ------------------------------------------------------


def test_no_request_the_schema_allows_gets_a_5xx(server: ApiServer, key: str) -> None:
    """Schemathesis: every operation, 30 generated requests each, every response checked against the spec.

    Not checked: that every schema-valid request succeeds. A message that is only spaces, a shop
    or a draft_id that does not exist are valid JSON for the schema and rightly refused.
    """
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {key}"}
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 6

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def fuzz(case: Case) -> None:  # type: ignore[type-arg]
            response = case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
            assert response.status_code < 500, response.text
            assert "Traceback" not in response.text

        fuzz()


def test_serve_fails_in_one_line_when_the_store_cannot_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data dir should be")
    monkeypatch.setenv("KEFU_DATA_DIR", str(blocker))
    get_settings.cache_clear()
    assert main(["serve", "--port", str(free_port())]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "store" in err and "Traceback" not in err


# --- shop tools (welcome, quick phrases) and order context ---------------------------


def test_welcome_per_shop(api: httpx.Client) -> None:
    default = api.get("/v1/welcome").json()
    tmall = api.get("/v1/welcome", params={"shop": "tmall_flagship"}).json()
    assert default["ok"] and tmall["ok"]
    assert default["violations"] == []
    assert "木夕天猫旗舰店" in tmall["text"] and "木夕天猫旗舰店" not in default["text"]
    assert_error(api.get("/v1/welcome", params={"shop": "nope"}), 400, "unknown_shop")


def test_phrases_filtered_by_category_and_text(api: httpx.Client) -> None:
    everything = api.get("/v1/phrases").json()
    bargaining = api.get("/v1/phrases", params={"category": "bargaining"}).json()
    coupons = api.get("/v1/phrases", params={"search": "优惠券"}).json()
    assert len(bargaining) < len(everything)
    assert bargaining and all(p["category"] == "bargaining" for p in bargaining)
    assert any(p["declines"] for p in bargaining)
    assert coupons and len(coupons) < len(everything)
    assert_error(api.get("/v1/phrases", params={"category": "nope"}), 404, "not_found")


def test_a_delivered_order_never_gets_a_ship_today_reply(api: httpx.Client) -> None:
    body = {"query": "今天能发货吗", "order": {"status": "delivered"}}
    draft = api.post("/v1/drafts", json=body).json()
    for citation in draft["citations"]:
        script = api.get(f"/v1/scripts/{citation['id']}").json()
        statuses = script["conditions"]["status"]
        assert not statuses or "delivered" in statuses, citation["id"]


def test_shop_tools_need_a_key(server: ApiServer) -> None:
    with server.client() as anonymous:
        assert_error(anonymous.get("/v1/welcome"), 401)
        assert_error(anonymous.get("/v1/phrases"), 401)


def test_supervisor_routes_need_a_supervisor_key(api: httpx.Client, server: ApiServer, db: Store) -> None:
    draft_id = api.post("/v1/drafts", json={"query": f"能便宜点吗，我的手机{PHONE}"}).json()["draft_id"]
    sent = api.post("/v1/feedback", json={"draft_id": draft_id, "action": "edited", "final_text": "亲，满300减20哦"})
    assert sent.status_code == 201, sent.text
    assert_error(api.get("/v1/review"), 403, "forbidden")
    assert_error(api.get("/v1/stats"), 403, "forbidden")
    with server.client(db.create_key("supervisor-tool", role="supervisor")) as boss:
        queue = boss.get("/v1/review", params={"limit": 500})
        assert queue.status_code == 200, queue.text
        (item,) = [row for row in queue.json() if row["draft_id"] == draft_id]
        assert (item["action"], item["final_text"], item["revision"]) == ("edited", "亲，满300减20哦", 1)
        assert PHONE not in queue.text and "【手机号】" in item["query"]
        assert boss.get("/v1/stats").json()["total"]["edited"] >= 1
        assert_error(boss.get("/v1/review", params={"since": "yesterday"}), 422)
