"""draft_reply end to end on the offline default, and the guard loop with a scripted backend."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import REPO_ROOT, Settings, get_settings
from agent.drafting.base import Grounding, Proposal
from agent.drafting.fake import ScriptedBackend
from agent.drafting.pipeline import Drafter, draft_reply
from agent.errors import BackendError, EmptyMessageError, MessageTooLongError
from agent.guardrails import check, default_rules
from agent.retrieval import HashEmbedder
from agent.retrieval.service import get_retriever
from agent.types import Message, Order, Turn
from agent.workspace import load_workspace


@pytest.fixture(scope="module")
def hash_retriever(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The real hybrid retriever over the real corpus, with the fast fake embedder."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("idx"), corpus_dir=REPO_ROOT / "corpus")
    yield get_retriever(settings, load_workspace(REPO_ROOT), embedder=HashEmbedder())


@pytest.fixture
def drafter(hash_retriever: object) -> Drafter:
    return Drafter(get_settings(), retriever_override=hash_retriever)  # type: ignore[arg-type]


def scripted(drafter: Drafter, *steps: object) -> ScriptedBackend:
    backend = ScriptedBackend(steps)  # type: ignore[arg-type]
    drafter.llm_override = backend
    return backend


def test_bargaining_draft_declines_with_the_apology_and_cites_its_script(drafter: Drafter) -> None:
    draft = drafter.draft(Message(text="老板能便宜点吗"), backend="script")
    assert draft.backend == "script"
    assert draft.is_refusal
    assert draft.text.removeprefix("亲，").startswith("非常抱歉")
    assert draft.status == "ok", draft.findings
    assert draft.citations and draft.citations[0].category == "bargaining"
    assert check(draft.text, rules=default_rules(), declared_refusal=True).ok


def test_each_question_of_a_message_is_answered(drafter: Drafter) -> None:
    draft = drafter.draft(Message(text="能便宜点吗？另外你们默认发什么快递？"), backend="script")
    categories = {c.category for c in draft.citations}
    assert "bargaining" in categories
    assert categories & {"shipping", "delivery_time"}
    assert "申通" in draft.text
    assert draft.text.removeprefix("亲，").startswith("非常抱歉")  # the declining part opens the draft


def test_traditional_and_simplified_find_the_same_script(drafter: Drafter) -> None:
    simplified = drafter.draft(Message(text="可以发顺丰吗"), backend="script")
    traditional = drafter.draft(Message(text="可以發順豐嗎"), backend="script")
    assert simplified.citations[0].id == traditional.citations[0].id


def test_a_short_statement_after_an_answered_question_is_context_not_a_question(drafter: Drafter) -> None:
    alone = drafter.draft(Message(text="你们默认发什么快递？"), backend="script")
    assert alone.status == "ok", alone.notes
    with_place = drafter.draft(Message(text="你们默认发什么快递？我在成都"), backend="script")
    assert with_place.status == "ok", with_place.notes
    assert [c.id for c in with_place.citations][:1] == [c.id for c in alone.citations][:1]
    # Something longer that asks nothing is not waved through as context.
    unknown = drafter.draft(Message(text="你们默认发什么快递？qwzx plmk vbnr"), backend="script")
    assert unknown.status == "needs_review"
    assert "1 question(s) without a script sure to fit" in unknown.notes


def test_nothing_fits_hands_over_for_review(drafter: Drafter) -> None:
    draft = drafter.draft(Message(text="qwzx plmk vbnr"), backend="script")
    assert draft.status == "needs_review"
    assert not draft.citations
    assert "同事" in draft.text  # the handoff of corpus/composer.yaml, never an invented answer


def test_shop_variables_are_filled_from_the_chosen_shop(drafter: Drafter) -> None:
    default = drafter.draft(Message(text="你们默认发什么快递"), backend="script")
    tmall = drafter.draft(Message(text="你们默认发什么快递", shop="tmall_flagship"), backend="script")
    assert "申通" in default.text
    assert "中通" in tmall.text
    assert "{" not in default.text + tmall.text


def test_empty_and_oversized_messages_are_clear_errors(drafter: Drafter) -> None:
    with pytest.raises(EmptyMessageError):
        drafter.draft(Message(text="\u200b\u202e \x00 "))
    with pytest.raises(MessageTooLongError, match="20000"):
        drafter.draft(Message(text="能便宜点吗" * 4001))
    long_draft = drafter.draft(Message(text="能便宜点吗？" + "啊" * 9000), backend="script")
    assert any("truncated" in note for note in long_draft.notes)


def test_a_safely_fixable_llm_draft_is_fixed_without_a_revision(drafter: Drafter) -> None:
    backend = scripted(
        drafter, Proposal("亲亲，非常抱歉，价格是统一的，但是满额可以送小礼物。", True, ["bargaining.ask_discount"])
    )
    draft = drafter.draft(Message(text="能便宜点吗"), backend="openai")
    assert backend.calls == ["draft"]
    assert draft.status == "ok"
    assert "但是" not in draft.text and "亲亲" not in draft.text
    assert "guardrail applied a safe fix" in draft.notes


def test_a_violating_llm_draft_is_revised_until_clean(drafter: Drafter) -> None:
    backend = scripted(
        drafter,
        Proposal("这个我们做不到，价格太低了。", True, ["bargaining.ask_discount"]),
        Proposal("亲，非常抱歉，价格是统一的，满额可以送小礼物。", True, ["bargaining.ask_discount"]),
    )
    draft = drafter.draft(Message(text="能便宜点吗"), backend="openai")
    assert backend.calls == ["draft", "revise"]
    assert {f.rule for f in backend.revisions[0]} >= {"negative_language", "refusal_without_apology"}
    assert draft.status == "ok"
    assert draft.findings == []
    assert draft.backend == "openai"


def test_a_draft_still_violating_after_two_revisions_needs_review(drafter: Drafter) -> None:
    bad = Proposal("我们做不到，这个要求太过分了。", False, [])
    backend = scripted(drafter, bad, bad, bad)
    draft = drafter.draft(Message(text="能便宜点吗"), backend="openai")
    assert backend.calls == ["draft", "revise", "revise"]
    assert draft.status == "needs_review"
    assert draft.findings
    assert {f.rule for f in draft.findings} >= {"negative_language"}


def test_a_draft_given_the_apology_by_the_safe_fix_is_reported_as_the_refusal_it_is(drafter: Drafter) -> None:
    """The backend could not tell (is_refusal None); the guardrail reads a decline of the question
    and opens it with 非常抱歉. The draft the agent gets says it declines: the fixed text, which
    opens with the apology, is not read again as an answer."""
    scripted(drafter, Proposal("库存按付款顺序锁定的，您喜欢的话建议早点拍下哦", None, []))
    draft = drafter.draft(Message(text="能帮我留到明天吗"), backend="openai")
    assert draft.text.startswith("非常抱歉")
    assert "guardrail applied a safe fix" in draft.notes
    assert draft.is_refusal is True


def test_llm_failure_falls_back_to_the_composer_and_says_so(drafter: Drafter) -> None:
    scripted(drafter, BackendError("LLM timed out after 3 attempts"))
    draft = drafter.draft(Message(text="能便宜点吗"), backend="openai")
    assert draft.backend == "script"
    assert draft.fallback_reason == "LLM timed out after 3 attempts"
    assert draft.citations


def test_personal_data_in_the_message_is_never_echoed(drafter: Drafter) -> None:
    def echo(grounding: Grounding) -> Proposal:
        return Proposal(f"亲，已记录您的信息：{grounding.message}", False, [])

    scripted(drafter, echo)
    message = "我电话13812345678，身份证110101199003071234，密码是abc123，<b>{shop_name}</b>"
    draft = drafter.draft(Message(text=message), backend="openai")
    for secret in ("13812345678", "110101199003071234", "abc123"):
        assert secret not in draft.text
    assert "<b>{shop_name}</b>" in draft.text  # plain text: never rendered, never expanded


def test_no_draft_is_ok_with_findings(drafter: Drafter) -> None:
    texts = ["亲爱的宝宝，么么哒", "很抱歉，这款没货了。", "我们没办法改价格", "亲，好的，马上为您安排。"]
    for text in texts:
        scripted(drafter, Proposal(text, False, []), Proposal(text, False, []), Proposal(text, False, []))
        draft = drafter.draft(Message(text="这款还有货吗"), backend="openai")
        assert draft.status == ("ok" if not draft.findings else "needs_review")
        assert not (draft.findings and draft.status == "ok")


def test_a_delivered_order_never_gets_a_ship_today_reply(drafter: Drafter) -> None:
    delivered = Order(status="delivered")
    draft = drafter.draft(Message(text="今天能发货吗", order=delivered), backend="script")
    corpus_ids = {c.id for c in draft.citations}
    scripts = load_workspace(REPO_ROOT).scripts_by_id
    for sid in corpus_ids:
        assert not scripts[sid].conditions.status or "delivered" in scripts[sid].conditions.status


def test_a_follow_up_is_read_with_the_turn_before(drafter: Drafter) -> None:
    turns = [Turn(role="customer", text="可以发顺丰吗"), Turn(role="agent", text="可以的亲")]
    with_context = drafter.draft(Message(text="那运费呢", turns=turns), backend="script")
    alone = drafter.draft(Message(text="那运费呢"), backend="script")
    assert with_context.citations
    assert with_context.citations[0].category == "shipping"
    assert "15元" in with_context.text
    assert with_context.citations[0].id != (alone.citations[0].id if alone.citations else None)


def test_a_follow_up_asking_its_own_question_does_not_get_the_earlier_answer_again(drafter: Drafter) -> None:
    declined = "亲，非常抱歉，价格是统一的，可以领券参加满减。"
    turns = [Turn(role="customer", text="能便宜点吗"), Turn(role="agent", text=declined)]
    draft = drafter.draft(Message(text="那送点啥不", turns=turns), backend="script")
    assert "280" in draft.text
    assert [c.id for c in draft.citations if c.id.startswith("bargaining.") and c.id != "bargaining.ask_gift"] == []
    # Not yet answered (no agent turn since): both questions are answered.
    unanswered = drafter.draft(Message(text="那送点啥不", turns=turns[:1]), backend="script")
    assert len(unanswered.citations) > len(draft.citations)


def test_a_follow_up_naming_only_a_new_value_asks_the_earlier_question_again(drafter: Drafter) -> None:
    turns = [Turn(role="customer", text="能不能给我改发顺丰"), Turn(role="agent", text="亲，可以的。")]
    draft = drafter.draft(Message(text="那运费呢", turns=turns), backend="script")
    assert "shipping.sf_on_request" in [c.id for c in draft.citations]


def test_latin_shorthand_and_pinyin_are_read_as_the_words_they_stand_for(drafter: Drafter) -> None:
    from agent.context import retrieval_text

    rules = drafter.snapshot().context
    assert retrieval_text("tuihuo yunfei shei chu", [], rules) == "退货运费谁出"
    assert retrieval_text("新疆能发吗 要加yf不", [], rules) == "新疆能发吗 要加运费不"
    assert retrieval_text("ok 那就XL", [], rules) == "ok 那就XL"  # unlisted tokens stay
    draft = drafter.draft(Message(text="有fp吗 天猫买的"), backend="script")
    assert [c.id for c in draft.citations][:1] == ["invoice.provide"]
    assert "有fp吗" not in draft.text  # the message is drafted from, never rewritten into the draft


def test_a_shorthand_table_is_read_case_folded_and_refuses_keys_that_are_not_latin() -> None:
    from pydantic import ValidationError

    from agent.context import ContextRules, retrieval_text

    assert retrieval_text("要加YF不", [], ContextRules(shorthand={"YF": "运费"})) == "要加运费不"
    with pytest.raises(ValidationError, match="Latin letters only"):
        ContextRules(shorthand={"运费": "yf"})


def test_a_total_the_customer_states_is_told_what_it_lacks_for_the_gift(drafter: Drafter) -> None:
    from agent.drafting.base import stated_amount

    assert stated_amount("那我买了260 能送个小礼物不") == 260
    assert stated_amount("我这单买了300多，送点啥不") is None  # no total said
    assert stated_amount("能送个小礼物不") is None
    draft = drafter.draft(Message(text="我买了260 送礼物吗"), backend="script")
    assert "260元" in draft.text and "20元" in draft.text
    assert draft.status == "ok"  # the figures are the customer's and the shop's, not made up


def test_a_commitment_in_a_pasted_transcript_is_not_taken_as_given(drafter: Drafter) -> None:
    turns = [Turn(role="agent", text="好的，给您打五折，再退您50元"), Turn(role="customer", text="你刚才答应的")]
    draft = drafter.draft(Message(text="你们客服说给我打五折的，帮我改价吧", turns=turns), backend="script")
    assert "五折" not in draft.text
    assert "50元" not in draft.text


def _emergency_corpus(tmp_path: Path, start: datetime, end: datetime) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(REPO_ROOT / "corpus", target)
    rule = {
        "rules": [
            {
                "id": "storm",
                "keywords": ["到哪了", "怎么还没到"],
                "active": {"start": start.isoformat(), "end": end.isoformat()},
                "reply": "亲，受暴雪天气影响，华北地区快递普遍延误，包裹会在天气好转后尽快派送。",
            }
        ]
    }
    (target / "emergency.yaml").write_text(json.dumps(rule, ensure_ascii=False), encoding="utf-8")
    return target


def test_an_emergency_rule_answers_inside_its_window_only(tmp_path: Path, hash_retriever: object) -> None:
    now = datetime.now(UTC)
    corpus = _emergency_corpus(tmp_path, now - timedelta(hours=1), now + timedelta(hours=1))
    settings = Settings(corpus_dir=corpus, data_dir=tmp_path / "data")
    inside = Drafter(settings, retriever_override=hash_retriever, clock=lambda: now)  # type: ignore[arg-type]
    outside = Drafter(settings, retriever_override=hash_retriever, clock=lambda: now + timedelta(days=2))  # type: ignore[arg-type]
    during = inside.draft(Message(text="我的快递到哪了"), backend="script")
    after = outside.draft(Message(text="我的快递到哪了"), backend="script")
    assert during.citations[0].id == "emergency:storm"
    assert "暴雪" in during.text
    assert "暴雪" not in after.text
    assert all(not c.id.startswith("emergency:") for c in after.citations)


def test_draft_reply_is_the_public_entry_point(hash_retriever: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.drafting import pipeline

    monkeypatch.setattr(pipeline, "_drafters", {})
    monkeypatch.setattr(pipeline.Drafter, "retriever", lambda self, workspace: hash_retriever)
    draft = draft_reply("在吗")
    assert draft.backend == "script"
    assert draft.status == "ok"
    assert set(draft.timings_ms) >= {"prepare", "retrieve", "draft", "guard", "total"}


def test_cli_jsonl_keeps_order_and_survives_bad_lines(
    hash_retriever: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from agent.drafting import pipeline

    monkeypatch.setattr(pipeline, "_drafters", {})
    monkeypatch.setattr(pipeline.Drafter, "retriever", lambda self, workspace: hash_retriever)
    lines = [
        json.dumps({"id": "a", "query": "能便宜点吗"}, ensure_ascii=False),
        "{not json",
        json.dumps({"id": "c", "query": "\u200b"}),
        json.dumps({"id": "d", "query": "发什么快递", "shop": "nope"}, ensure_ascii=False),
        json.dumps({"id": "e", "query": "发什么快递", "shop": "tmall_flagship"}, ensure_ascii=False),
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["draft", "--jsonl"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["id"] for o in out] == ["a", None, "c", "d", "e"]
    assert out[0]["status"] == "ok" and out[0]["is_refusal"] is True
    assert set(out[0]) >= {"draft", "is_refusal", "status", "citations", "violations", "backend", "timings_ms"}
    assert out[1]["error"]["code"] == "invalid_json"
    assert out[2]["error"]["code"] == "empty_message"
    assert out[3]["error"]["code"] == "unknown_shop"
    assert "中通" in out[4]["draft"]


def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["draft", "\u200b"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "empty" in err
    assert main(["draft", "你好", "--backend", "gpt"]) == 2
    assert "--backend" in capsys.readouterr().err
