"""The ``fake_llm`` fixture: a fake OpenAI-compatible server that kefu's settings point at."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.config import get_settings
from tests.fakes.openai_server import FakeOpenAIServer

FAKE_MODEL = "gpt-4o-mini"
FAKE_KEY = "test-key"


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    """A started fake server; KEFU_LLM_* point at it. Fails the test on an unscripted or unused call."""
    server = FakeOpenAIServer().start()
    monkeypatch.setenv("KEFU_LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("KEFU_LLM_API_KEY", FAKE_KEY)
    monkeypatch.setenv("KEFU_LLM_MODEL", FAKE_MODEL)
    get_settings.cache_clear()
    try:
        yield server
    finally:
        server.stop()
        get_settings.cache_clear()
    server.verify()
