"""The API from the web workbench's pages: a signed-in session (cookie plus CSRF token) is a caller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.browser.app import Bench, build
from tests.test_web import sign_in


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return build(tmp_path_factory.mktemp("api-session"))


@pytest.fixture
def client(bench: Bench) -> Iterator[TestClient]:
    with TestClient(bench.app, raise_server_exceptions=False) as client:
        yield client


def test_a_session_with_its_csrf_token_calls_the_api(client: TestClient, bench: Bench) -> None:
    csrf = sign_in(client, bench.key("api-session-agent"))
    checked = client.post("/v1/check", json={"draft": "您好，今天发货。"}, headers={"X-CSRF-Token": csrf})
    assert checked.status_code == 200, checked.text
    assert checked.json()["ok"] is True
    assert client.post("/v1/check", json={"draft": "您好"}).status_code == 401  # the cookie alone is not enough
    forged = client.post("/v1/check", json={"draft": "您好"}, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 401
    assert client.get("/v1/review", headers={"X-CSRF-Token": csrf}).status_code == 403  # an agent's session


def test_a_supervisors_session_reads_the_review_queue(client: TestClient, bench: Bench) -> None:
    csrf = sign_in(client, bench.key("api-session-boss", "supervisor"))
    assert client.get("/v1/review", headers={"X-CSRF-Token": csrf}).status_code == 200
