"""draft_reply on the openai backend, end to end against the fake OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from agent.cli import main
from agent.config import REPO_ROOT, Settings, get_settings
from agent.drafting import pipeline
from agent.drafting.pipeline import Drafter
from agent.retrieval import HashEmbedder
from agent.retrieval.service import get_retriever
from agent.types import Message
from agent.workspace import load_workspace
from tests.fakes.openai_server import FakeOpenAIServer, Reply


def answer(draft: str, is_refusal: bool = False, cited: list[str] | None = None) -> str:
    return json.dumps({"draft": draft, "is_refusal": is_refusal, "cited_ids": cited or []}, ensure_ascii=False)


@pytest.fixture(scope="module")
def hash_retriever(tmp_path_factory: pytest.TempPathFactory) -> object:
    settings = Settings(data_dir=tmp_path_factory.mktemp("idx"), corpus_dir=REPO_ROOT / "corpus")
    return get_retriever(settings, load_workspace(REPO_ROOT), embedder=HashEmbedder())


@pytest.fixture
def drafter(fake_llm: FakeOpenAIServer, hash_retriever: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Drafter]:
    monkeypatch.setenv("KEFU_LLM_TIMEOUT_S", "0.5")
    monkeypatch.setenv("KEFU_LLM_MAX_RETRIES", "1")
    get_settings.cache_clear()
    monkeypatch.setattr(pipeline, "_drafters", {})
    monkeypatch.setattr(pipeline.Drafter, "retriever", lambda self, workspace: hash_retriever)
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
        answer("亲，非常抱歉，价格是统一的，可以领取店铺优惠券。", True, ["bargaining.ask_discount"]),
    )
    draft = drafter.draft(Message(text="能便宜点吗"))
    # ok: clean after the re-ask, and it cites the script that answers the question (issue 15).
    assert draft.status == "ok" and draft.findings == [], draft.notes
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


# --- issue 15: ok is a promise --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "claim"),
    [
        ("亲，非常抱歉，价格是统一的，今天全场五折哦。", "五折"),
        ("亲，可以发顺丰，另补15元，明天一定到。", "明天一定到"),
    ],
)
def test_an_invented_discount_or_delivery_promise_needs_review_at_its_span(
    drafter: Drafter, fake_llm: FakeOpenAIServer, text: str, claim: str
) -> None:
    cited = ["bargaining.ask_discount"] if "五折" in text else ["shipping.sf_on_request"]
    fake_llm.enqueue(answer(text, "非常抱歉" in text, cited))
    draft = drafter.draft(Message(text="能便宜点吗" if "五折" in text else "能发顺丰吗"))
    assert draft.backend == "openai" and draft.status == "needs_review"
    found = [f for f in draft.findings if f.rule == "unsupported_claim"]
    assert [draft.text[f.start : f.end] for f in found] == [claim]


def test_a_grounded_llm_draft_is_ok(drafter: Drafter, fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue(
        answer("亲，可以发顺丰，需要另补15元运费，15:00前付款当天发出。", False, ["shipping.sf_on_request"])
    )
    draft = drafter.draft(Message(text="能发顺丰吗"))
    assert draft.backend == "openai" and draft.status == "ok", (draft.findings, draft.notes)
    assert [c.id for c in draft.citations] == ["shipping.sf_on_request"]


def test_a_cited_id_that_was_not_retrieved_is_dropped_and_noted(drafter: Drafter, fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue(answer("亲，可以发顺丰，需要另补15元运费。", False, ["shipping.sf_on_request", "size.brand_fit"]))
    draft = drafter.draft(Message(text="能发顺丰吗"))
    assert [c.id for c in draft.citations] == ["shipping.sf_on_request"]
    assert any("size.brand_fit" in note and "dropped" in note for note in draft.notes)


def test_the_grounding_check_flags_a_stray_citation_of_any_backend() -> None:
    from agent.drafting.base import Candidate, Grounding, Proposal, Question
    from agent.drafting.grounding import check_grounding
    from agent.workspace import load_workspace

    workspace = load_workspace(REPO_ROOT)
    sf = workspace.scripts_by_id["shipping.sf_on_request"]
    grounding = Grounding(
        "能发顺丰吗",
        (Question("能发顺丰吗", (Candidate(sf, 0.3, dense_rank=1, bm25_rank=1),)),),
        workspace.shop("default"),
    )
    proposal = Proposal("亲，可以发顺丰，需要另补15元运费。", False, ["shipping.sf_on_request", "size.brand_fit"])
    result = check_grounding(grounding, proposal, workspace.style, decides_fit=False)
    assert proposal.cited_ids == ["shipping.sf_on_request"]
    assert [f.rule for f in result.findings] == ["uncited_source"] and not result.ok


def test_an_llm_draft_citing_nothing_that_fits_is_not_ok(drafter: Drafter, fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue(answer("亲，可以发顺丰，需要另补15元运费。", False, []))
    draft = drafter.draft(Message(text="能发顺丰吗"))
    assert draft.status == "needs_review"
    assert any("no cited script fits" in note for note in draft.notes)
