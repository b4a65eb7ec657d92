"""What a model answers is parsed tolerantly; an answer with no usable draft is a BackendError."""

from __future__ import annotations

import pytest

from agent.drafting.llm import parse_reply
from agent.errors import BackendError

OFFERED = {"bargaining.discount": True, "shipping.time": False}


@pytest.mark.parametrize(
    ("content", "text", "is_refusal", "cited"),
    [
        (
            '{"draft": "亲，今天发货。", "is_refusal": false, "cited_ids": ["shipping.time"]}',
            "亲，今天发货。",
            False,
            ["shipping.time"],
        ),
        ('```json\n{"draft": "亲，今天发货。", "is_refusal": false}\n```', "亲，今天发货。", False, []),
        ('好的：\n```\n{"draft": " 亲，今天发货。 "}\n```\n', "亲，今天发货。", False, []),
        (
            '回复如下 {"draft": "亲，非常抱歉。", "is_refusal": "true", "cited_ids": "bargaining.discount"} 以上',
            "亲，非常抱歉。",
            True,
            ["bargaining.discount"],
        ),
        ('{"draft": "亲，今天发货。", "is_refusal": "False"}', "亲，今天发货。", False, []),
        ('{"note": "x"} {"draft": "亲，今天发货。", "is_refusal": 0}', "亲，今天发货。", False, []),
        (
            '{"draft": "亲，今天发货。", "cited_ids": ["shipping.time", "shipping.time"]}',
            "亲，今天发货。",
            False,
            ["shipping.time"],
        ),
    ],
)
def test_tolerated_answers(content: str, text: str, is_refusal: bool, cited: list[str]) -> None:
    proposal = parse_reply(content, OFFERED)
    assert (proposal.text, proposal.is_refusal, proposal.cited_ids) == (text, is_refusal, cited)


def test_a_missing_is_refusal_is_taken_from_the_cited_scripts() -> None:
    declining = parse_reply('{"draft": "亲，非常抱歉。", "cited_ids": ["bargaining.discount"]}', OFFERED)
    assert declining.is_refusal is True
    assert any("is_refusal" in note for note in declining.notes)
    assert parse_reply('{"draft": "亲，今天发货。", "cited_ids": ["shipping.time"]}', OFFERED).is_refusal is False


def test_ids_the_prompt_did_not_offer_are_dropped_with_a_note() -> None:
    proposal = parse_reply('{"draft": "亲。", "cited_ids": ["shipping.time", "returns.any", 7]}', OFFERED)
    assert proposal.cited_ids == ["shipping.time"]
    assert "dropped cited ids that were not retrieved: returns.any, 7" in proposal.notes


@pytest.mark.parametrize(
    "content",
    [None, "", "亲，今天发货", "{broken", "[1, 2]", '{"draft": "   "}', '{"draft": 42}', '{"reply": "亲"}'],
)
def test_no_usable_draft(content: str | None) -> None:
    with pytest.raises(BackendError, match="no usable draft"):
        parse_reply(content, OFFERED)
