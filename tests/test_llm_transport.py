"""ChatTransport against a fake OpenAI-compatible server on loopback: what goes over HTTP,
retries with backoff, Retry-After, timeouts, and errors that name what to fix."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from agent.config import REPO_ROOT, Settings, get_settings
from agent.drafting.llm import OpenAIBackend
from agent.drafting.prompts import load_prompt
from agent.drafting.transport import MAX_BACKOFF_S, PLACEHOLDER_KEY, ChatTransport
from agent.errors import BackendError, ConfigError
from agent.workspace import load_workspace
from tests.fakes.fixtures import FAKE_KEY, FAKE_MODEL
from tests.fakes.grounding import make_grounding
from tests.fakes.openai_server import FakeOpenAIServer, Reply

PROMPTS = REPO_ROOT / "prompts"
PARAMS = load_prompt("draft.v1", PROMPTS).params.call_kwargs()


def answer(draft: str) -> str:
    return json.dumps({"draft": draft, "is_refusal": False, "cited_ids": []}, ensure_ascii=False)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def transport_for(sleeps: list[float], monkeypatch: pytest.MonkeyPatch) -> Callable[..., ChatTransport]:
    """A transport on the current settings, with extra KEFU_* variables; its backoff sleeps are recorded."""

    def make(**env: str) -> ChatTransport:
        for name, value in env.items():
            monkeypatch.setenv(f"KEFU_{name.upper()}", value)
        get_settings.cache_clear()
        return ChatTransport(get_settings(), sleep=sleeps.append)

    return make


def ask(transport: ChatTransport) -> str:
    return transport.complete("系统提示", "顾客的消息", PARAMS)


def test_a_backend_drafts_end_to_end_over_http(
    fake_llm: FakeOpenAIServer, transport_for: Callable[..., ChatTransport]
) -> None:
    """The one backend test through HTTP: prompt in the request body, the parsed answer back."""
    fake_llm.enqueue(answer("亲，默认发申通。"))
    backend = OpenAIBackend(get_settings(), prompts=load_workspace(REPO_ROOT).prompt, transport=transport_for())
    grounding = make_grounding()
    proposal = backend.draft(grounding)
    assert proposal.text == "亲，默认发申通。"
    (request,) = fake_llm.chat_requests
    assert request.headers["authorization"] == f"Bearer {FAKE_KEY}"
    body = request.body
    assert body["model"] == FAKE_MODEL
    assert body["temperature"] == PARAMS["temperature"]
    assert body["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert grounding.message in body["messages"][1]["content"]


def test_the_system_and_user_text_go_out_as_they_are(
    fake_llm: FakeOpenAIServer, transport_for: Callable[..., ChatTransport]
) -> None:
    fake_llm.enqueue("模型的回答")
    assert ask(transport_for()) == "模型的回答"
    messages = fake_llm.chat_requests[0].body["messages"]
    assert messages == [{"role": "system", "content": "系统提示"}, {"role": "user", "content": "顾客的消息"}]


def test_rate_limited_then_answered_after_the_servers_retry_after(
    fake_llm: FakeOpenAIServer, transport_for: Callable[..., ChatTransport], sleeps: list[float]
) -> None:
    fake_llm.enqueue(Reply(status=429, retry_after=0.05), answer("亲，默认发申通。"))
    assert ask(transport_for()) == answer("亲，默认发申通。")
    assert len(fake_llm.chat_requests) == 2
    assert sleeps == [0.05]


def test_server_errors_are_retried_with_growing_backoff_then_reported(
    fake_llm: FakeOpenAIServer, transport_for: Callable[..., ChatTransport], sleeps: list[float]
) -> None:
    fake_llm.enqueue(Reply(status=500), Reply(status=502), Reply(status=503))
    with pytest.raises(BackendError) as err:
        ask(transport_for(llm_max_retries="2"))
    assert "after 3 attempts" in err.value.message
    assert "HTTP 503" in err.value.message
    assert len(fake_llm.chat_requests) == 3
    assert len(sleeps) == 2
    assert 0 < sleeps[0] < sleeps[1] <= MAX_BACKOFF_S


def test_a_long_retry_after_gives_up_at_once(
    fake_llm: FakeOpenAIServer, transport_for: Callable[..., ChatTransport], sleeps: list[float]
) -> None:
    fake_llm.enqueue(Reply(status=429, retry_after=120))
    with pytest.raises(BackendError, match="retry after 120s"):
        ask(transport_for())
    assert len(fake_llm.chat_requests) == 1
    assert sleeps == []


def test_a_slow_server_times_out_after_the_retries(
    fake_llm: FakeOpenAIServer, transport_for: Callable[..., ChatTransport], sleeps: list[float]
) -> None:
    late = Reply(content=answer("太晚了"), delay_s=5)
    fake_llm.enqueue(late, late)
    with pytest.raises(BackendError) as err:
        ask(transport_for(llm_timeout_s="0.2", llm_max_retries="1"))
    assert "no answer within 0.2s" in err.value.message
    assert "after 2 attempts" in err.value.message
    assert len(fake_llm.chat_requests) == 2
    assert len(sleeps) == 1


def test_a_rejected_key_is_not_retried(
    fake_llm: FakeOpenAIServer, transport_for: Callable[..., ChatTransport], sleeps: list[float]
) -> None:
    fake_llm.enqueue(Reply(status=401))
    with pytest.raises(BackendError, match="KEFU_LLM_API_KEY"):
        ask(transport_for())
    assert len(fake_llm.chat_requests) == 1
    assert sleeps == []


def test_an_unreachable_server_is_a_backend_error(
    transport_for: Callable[..., ChatTransport], sleeps: list[float]
) -> None:
    with FakeOpenAIServer() as server:
        url = server.base_url  # a port that was free a moment ago and is closed now
    with pytest.raises(BackendError, match="cannot connect"):
        ask(transport_for(llm_base_url=url, llm_max_retries="1"))
    assert len(sleeps) == 1


def test_a_base_url_alone_sends_a_placeholder_key(
    fake_llm: FakeOpenAIServer, transport_for: Callable[..., ChatTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEFU_LLM_API_KEY")
    fake_llm.enqueue(answer("亲，默认发申通。"))
    ask(transport_for())
    assert fake_llm.chat_requests[0].headers["authorization"] == f"Bearer {PLACEHOLDER_KEY}"


def test_the_constructor_does_no_io_and_missing_configuration_is_named() -> None:
    ChatTransport(Settings(llm_base_url="http://127.0.0.1:9/v1"))  # nothing is contacted yet
    with pytest.raises(ConfigError, match="KEFU_LLM_BASE_URL"):
        ask(ChatTransport(Settings()))
    with pytest.raises(ConfigError, match="http://"):
        ask(ChatTransport(Settings(llm_base_url="localhost:11434")))
