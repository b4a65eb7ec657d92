"""Issue 15's quoted messages, on the real corpus and retrieval: each gets a correct draft (cites
a script that answers it, says what it must, nothing it must not, declines when it should) or
an honest needs_review. The table is tests/data/issue15_messages.jsonl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.config import REPO_ROOT
from agent.drafting.pipeline import draft_reply
from agent.types import Turn

CASES = [json.loads(line) for line in (REPO_ROOT / "tests" / "data" / "issue15_messages.jsonl").open(encoding="utf-8")]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_a_quoted_message_gets_a_correct_draft_or_an_honest_review(case: dict[str, Any], index_dir: Path) -> None:
    turns = [Turn(**t) for t in case.get("turns", [])]
    draft = draft_reply(case["message"], shop=case.get("shop", "default"), backend="script", turns=turns)
    cited = {c.id for c in draft.citations}
    problems = []
    if not cited & set(case["cites_any"]):
        problems.append(f"cites {sorted(cited)}, expected one of {case['cites_any']}")
    problems += [f"lacks {m}" for m in case.get("must", []) if m not in draft.text]
    problems += [f"says {m}" for m in case.get("must_not", []) if m in draft.text]
    if "refusal" in case and draft.is_refusal != case["refusal"]:
        problems.append("refusal disagrees")
    # Whatever the status, a draft never asserts what the issue quoted as wrong.
    assert not [p for p in problems if p.startswith("says")], (draft.text, problems)
    assert draft.status == "needs_review" or not problems, (draft.text, problems)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("message", "declines"),
    [
        ("西藏包邮吗", True),  # a yes/no question answered no
        ("寄西藏要加钱吗", False),  # a question about the fee, answered
        ("退货运费谁出", False),
        ("退货运费你们出吧", True),  # a request not granted
        ("那送点啥不", False),  # the gift over the threshold: a yes with a condition
        ("老板送个袜子呗", True),  # a named extra the random gift does not grant
    ],
)
def test_a_fee_answer_declines_by_what_the_customer_asked(message: str, declines: bool, index_dir: Path) -> None:
    """The same 15元 answer is a refusal to 包邮吗 and none to 要加钱吗: the guardrail reads the question."""
    draft = draft_reply(message, backend="script")
    assert draft.is_refusal is declines, draft.text
    if declines:
        assert "非常抱歉" in draft.text.split("，")[1] or draft.text.startswith("非常抱歉"), draft.text


def test_the_platform_the_customer_names_decides_a_platform_script() -> None:
    from agent.context import named_platform

    assert named_platform(["天猫上你帮我改下价"]) == "天猫"
    assert named_platform(["天貓店能改價嗎"]) == "天猫"  # Traditional
    assert named_platform(["淘宝和天猫价格一样吗"]) is None and named_platform(["能改价吗"]) is None


@pytest.mark.slow
def test_a_price_change_asked_on_tmall_gets_the_tmall_answer(index_dir: Path) -> None:
    # The default shop is on 淘宝; a customer who says 天猫 is answered by the 天猫 script (only the
    # shipping fee can change), not by a script that asserts the price was changed.
    draft = draft_reply("天猫店 能给我改下价吗", shop="default", backend="script")
    assert "bargaining.tmall_price_change" in {c.id for c in draft.citations}, draft.text
    assert "改好" not in draft.text


def test_a_pasted_order_number_is_not_retrieved_with() -> None:
    """Its digits say nothing about the question; they matched the 0元 script by its numbers."""
    from agent.context import retrieval_text
    from agent.workspace import load_workspace

    rules = load_workspace(REPO_ROOT).context
    text = retrieval_text("订单号2023110812345 照片发你了 怎么处理", [], rules)
    assert "2023110812345" not in text and "订单号" in text and "照片发你了 怎么处理" in text
    assert "3721" not in retrieval_text("订单号 3721 0098 4412 5566 退了吧", [], rules)
    assert retrieval_text("发票开800，实际付的是320", [], rules) == "发票开800，实际付的是320"  # amounts stay
    assert retrieval_text("20240518663210", [], rules) == "20240518663210"  # nothing else: kept


@pytest.mark.slow
def test_a_message_with_an_order_number_is_not_answered_as_a_free_order(index_dir: Path) -> None:
    draft = draft_reply("订单号2023110812345 照片发你了 怎么处理", backend="script")
    assert "rule_breaking.free_order" not in {c.id for c in draft.citations}, draft.text
