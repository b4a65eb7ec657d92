"""Issue 13 bounds, in process: per-key rate limits, the cap on concurrent (long) drafts, a cached /readyz."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.api import create_app
from agent.api.limits import DraftSlots, Limits, RateLimitedError, RateLimiter
from agent.api.middleware import PROBE_PAUSE_S, PROBES_PER_S, json_depth
from agent.api.services import LONG_DRAFT_NICE, lower_priority
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


def test_long_drafts_rest_between_them() -> None:
    now = [10.0]
    slots = DraftSlots(max_drafts=4, max_long=1, long_duty=0.5, clock=lambda: now[0])
    with slots.slot(long=True):
        now[0] += 2.0  # a long draft that took two seconds
    with pytest.raises(RateLimitedError) as raised, slots.slot(long=True):
        pass
    assert raised.value.retry_after_s == pytest.approx(2.0)
    with slots.slot(long=False):  # short drafts never rest
        pass
    now[0] += 2.0
    with slots.slot(long=True):
        pass


def test_anonymous_probes_in_a_loop_are_paced(made: list[TestClient]) -> None:
    client, key = client_for(Limits(readyz_interval_s=60))
    made.append(client)
    client.get("/readyz", headers={"X-API-Key": key})  # computed once
    started = time.monotonic()
    for _ in range(3 * PROBES_PER_S):  # a tight loop: about PROBES_PER_S a second get through unpaused
        assert client.get("/readyz").status_code == 200
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    for _ in range(5):  # keyed callers are never paced
        assert client.get("/readyz", headers={"X-API-Key": key}).status_code == 200
    assert time.monotonic() - started < PROBE_PAUSE_S


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
    for _ in range(10):  # past a few a second, anonymous probes are paced (see the pacing test)
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


def test_long_messages_are_drafted_at_a_lower_priority() -> None:
    seen: list[int] = []

    def probe() -> None:
        lower_priority()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    worker = threading.Thread(target=probe)
    worker.start()
    worker.join()
    assert seen == [os.getpriority(os.PRIO_PROCESS, 0) + LONG_DRAFT_NICE] or seen == [19]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < seen[0]  # this thread is untouched
