"""draft_reply on the openai backend, end to end against the fake OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from agent.cli import main
from agent.config import REPO_ROOT, Settings, get_settings
from agent.drafting import pipeline
from agent.drafting.pipeline import Drafter
from agent.retrieval import HashEmbedder, get_retriever
from agent.types import Message
from tests.fakes.openai_server import FakeOpenAIServer, Reply


def answer(draft: str, is_refusal: bool = False, cited: list[str] | None = None) -> str:
    return json.dumps({"draft": draft, "is_refusal": is_refusal, "cited_ids": cited or []}, ensure_ascii=False)


@pytest.fixture(scope="module")
def hash_retriever(tmp_path_factory: pytest.TempPathFactory) -> object:
    settings = Settings(data_dir=tmp_path_factory.mktemp("idx"), corpus_dir=REPO_ROOT / "corpus")
    return get_retriever(settings, embedder=HashEmbedder())


@pytest.fixture
def drafter(fake_llm: FakeOpenAIServer, hash_retriever: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Drafter]:
    monkeypatch.setenv("KEFU_LLM_TIMEOUT_S", "0.5")
    monkeypatch.setenv("KEFU_LLM_MAX_RETRIES", "1")
    get_settings.cache_clear()
    monkeypatch.setattr(pipeline, "_drafters", {})
    monkeypatch.setattr(pipeline.Drafter, "retriever", lambda self: hash_retriever)
    yield pipeline.drafter_for(get_settings())


def test_a_configured_llm_drafts_by_default(drafter: Drafter, fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue(answer("亲，本店默认发申通快递，普通城市包邮。", cited=["shipping.default_courier"]))
    draft = drafter.draft(Message(text="你们默认发什么快递"))
    assert draft.backend == "openai"
    assert draft.status == "ok"
    assert draft.text == "亲，本店默认发申通快递，普通城市包邮。"
    assert [c.id for c in draft.citations] == ["shipping.default_courier"]
    prompt = fake_llm.chat_requests[0].messages_text()
    assert "shipping.default_courier" in prompt and "你们默认发什么快递" in prompt


def test_malformed_model_output_falls_back_to_the_composer(drafter: Drafter, fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue("这不是JSON，只是一段话")
    draft = drafter.draft(Message(text="你们默认发什么快递"))
    assert draft.backend == "script"
    assert draft.fallback_reason
    assert "申通" in draft.text


def test_a_violating_draft_is_revised_by_the_re_ask(drafter: Drafter, fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue(
        answer("这个我们做不到，价格太低了。", True),
        answer("亲，非常抱歉，价格是统一的，可以领取店铺优惠券。", True),
    )
    draft = drafter.draft(Message(text="能便宜点吗"))
    assert draft.status == "ok" and draft.findings == []
    assert draft.text.startswith("亲，非常抱歉")
    revise = fake_llm.chat_requests[1].messages_text()
    assert "negative_language" in revise and "做不到" in revise


def test_rate_limited_then_answered(drafter: Drafter, fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue(Reply(status=429, retry_after="0"), answer("亲，可以发顺丰，需要另补15元运费。"))
    draft = drafter.draft(Message(text="能发顺丰吗"))
    assert draft.backend == "openai"
    assert len(fake_llm.chat_requests) == 2


def test_a_timeout_falls_back_to_the_composer_and_says_so(drafter: Drafter, fake_llm: FakeOpenAIServer) -> None:
    late = Reply(content=answer("太晚了"), delay_s=3)
    fake_llm.enqueue(late, late)
    draft = drafter.draft(Message(text="能发顺丰吗"))
    assert draft.backend == "script"
    assert draft.fallback_reason and "0.5" in draft.fallback_reason
    assert "顺丰" in draft.text
    assert draft.citations


def test_the_cli_drafts_through_the_configured_llm(
    drafter: Drafter, fake_llm: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_llm.enqueue(answer("亲，本店默认发申通快递。", cited=["shipping.default_courier"]))
    assert main(["draft", "默认发什么快递", "--backend", "openai", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backend"] == "openai" and out["status"] == "ok"
