"""Issue 13 bounds, in process: per-key rate limits, the cap on concurrent (long) drafts, a cached /readyz."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.api import create_app
from agent.api.limits import DraftSlots, Limits, RateLimitedError, RateLimiter
from agent.api.middleware import json_depth
from agent.config import Settings
from agent.drafting.pipeline import Drafter
from agent.retrieval import FakeRetriever, Hit
from agent.types import Draft, Message

LONG = "这件衣服什么时候发货，" * 700  # 7,700 characters


class Nothing(FakeRetriever):
    """Retrieves nothing, as often as asked."""

    def __init__(self) -> None:
        super().__init__([])

    def retrieve(self, query: str, k: int) -> list[Hit]:
        return []


class SlowDrafter(Drafter):
    """Drafts nothing useful, slowly: what a long message costs, without the CPU."""

    delay_s: float = 0.3

    def draft(self, message: Message, backend: str | None = None) -> Draft:
        time.sleep(self.delay_s)
        return Draft(text="您好", is_refusal=False, status="ok", backend="script")


def client_for(limits: Limits, drafter: Drafter | None = None) -> tuple[TestClient, str]:
    settings = Settings()
    app = create_app(settings, drafter or Drafter(settings, retriever_override=Nothing()), limits)
    client = TestClient(app, raise_server_exceptions=False)
    client.__enter__()
    key = app.state.services.db().create_key("limits-tool")
    return client, key


@pytest.fixture
def made() -> Iterator[list[TestClient]]:
    clients: list[TestClient] = []
    yield clients
    for client in clients:
        client.__exit__(None, None, None)


def test_a_bucket_refills_at_its_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(rate_per_s=2.0, burst=4.0, clock=lambda: now[0])
    for _ in range(4):
        limiter.take("a")
    with pytest.raises(RateLimitedError) as raised:
        limiter.take("a")
    assert raised.value.retry_after_s == pytest.approx(0.5)
    limiter.take("b")  # another key has its own bucket
    now[0] += 0.5
    limiter.take("a")


def test_slots_keep_a_lane_for_short_messages() -> None:
    slots = DraftSlots(max_drafts=3, max_long=1)
    with slots.slot(long=True):
        with pytest.raises(RateLimitedError, match="long-message"), slots.slot(long=True):
            pass
        with slots.slot(long=False), slots.slot(long=False), pytest.raises(RateLimitedError), slots.slot(long=False):
            pass
    with slots.slot(long=True):
        pass


def test_a_long_message_costs_more_of_the_rate(made: list[TestClient]) -> None:
    client, key = client_for(Limits(rate_per_s=0.5, burst=10, chars_per_unit=1000))
    made.append(client)
    headers = {"X-API-Key": key}
    assert client.post("/v1/drafts", json={"query": LONG}, headers=headers).status_code == 200  # 8 units + 1
    limited = client.post("/v1/drafts", json={"query": LONG}, headers=headers)
    assert limited.status_code == 429, limited.text
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1


def test_long_drafts_run_one_at_a_time_and_short_ones_still_pass(made: list[TestClient]) -> None:
    settings = Settings()
    client, key = client_for(Limits(max_drafts=4, max_long_drafts=1), SlowDrafter(settings))
    made.append(client)
    headers = {"X-API-Key": key}
    statuses: list[int] = []

    def post(query: str) -> None:
        statuses.append(client.post("/v1/drafts", json={"query": query}, headers=headers).status_code)

    first = threading.Thread(target=post, args=(LONG,))
    first.start()
    time.sleep(0.1)  # the first long draft is running
    second = client.post("/v1/drafts", json={"query": LONG}, headers=headers)
    short = client.post("/v1/drafts", json={"query": "什么时候发货"}, headers=headers)
    first.join()
    assert second.status_code == 429 and second.headers["retry-after"] == "1"
    assert short.status_code == 200 and statuses == [200]


def test_readyz_is_cached_and_tells_details_only_to_keyed_callers(made: list[TestClient]) -> None:
    client, key = client_for(Limits(readyz_interval_s=60))
    made.append(client)
    services = client.app.state.services  # type: ignore[attr-defined]
    writes = []
    real = services.db().writable

    def counted() -> bool:
        writes.append(1)
        return bool(real())

    services.db().writable = counted
    client.app.state.readiness._last = None  # type: ignore[attr-defined]
    for _ in range(50):
        assert client.get("/readyz").json() == {"status": "ready"}
    keyed = client.get("/readyz", headers={"Authorization": f"Bearer {key}"}).json()
    assert keyed == {"status": "ready", "checks": {"workspace": "ok", "index": "ok", "store": "ok"}}
    assert len(writes) == 1


def test_a_503_shows_no_server_paths(made: list[TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    client, key = client_for(Limits(readyz_interval_s=0))
    made.append(client)
    services = client.app.state.services  # type: ignore[attr-defined]
    monkeypatch.setattr(services.db(), "writable", lambda: False)
    anonymous = client.get("/readyz")
    assert anonymous.status_code == 503
    assert anonymous.json() == {"error": {"code": "not_ready", "message": "not ready"}}
    keyed = client.get("/readyz", headers={"X-API-Key": key})
    body: dict[str, Any] = keyed.json()
    assert keyed.status_code == 503 and "store" in body["error"]["message"]
    assert str(services.settings.data_dir) not in keyed.text and "/" not in body["checks"]["store"]


def test_healthz_touches_nothing(made: list[TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = client_for(Limits())
    made.append(client)
    services = client.app.state.services  # type: ignore[attr-defined]

    def broken() -> None:
        raise AssertionError("healthz used the store")

    monkeypatch.setattr(services, "db", broken)
    assert client.get("/healthz").json() == {"status": "ok"}


def test_nesting_depth_skips_strings() -> None:
    assert json_depth(b'{"a": [1, {"b": "[[[[\\"]]"}]}') == 3
    assert json_depth(b"[" * 50 + b"]" * 50) == 50
