"""Each example of issue 12's "What goes wrong today", with the customer's message it answers."""

from __future__ import annotations

import pytest

from agent.config import REPO_ROOT
from agent.guardrails import check, load_rules
from agent.guardrails.rules import RuleSet


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(REPO_ROOT / "corpus" / "tone_rules.yaml")


def rule_texts(draft: str, rules: RuleSet, query: str | None = None) -> list[tuple[str, str]]:
    return [(f.rule, f.text) for f in check(draft, rules=rules, query=query).findings]


@pytest.mark.parametrize(
    ("draft", "expected"),
    [
        ("宝宝放心，质量绝对没问题的。", ("over_intimacy", "宝宝")),  # 宝宝 with no comma after it
        ("顾客大人，已经为您发货了", ("over_intimacy", "大人")),  # 大人 as address
    ],
)
def test_missed_address_is_found(draft: str, expected: tuple[str, str], rules: RuleSet) -> None:
    assert rule_texts(draft, rules) == [expected]


@pytest.mark.parametrize(
    ("draft", "query"),
    [
        ("可以换的，换货的来回运费需要您承担哦", "能换个颜色吗"),  # an offer that costs the customer something
        ("可以开的，发票需要单独寄出，大概3天", "能开发票吗"),  # a yes with a condition
    ],
)
def test_a_granting_answer_is_no_refusal(draft: str, query: str, rules: RuleSet) -> None:
    verdict = check(draft, rules=rules, query=query)
    assert verdict.ok and not verdict.is_refusal and verdict.findings == []


def test_negative_language_inside_a_granting_answer_is_that_rule_only(rules: RuleSet) -> None:
    verdict = check("一般3天左右到，我们不能保证具体哪天", rules=rules, query="多久能到")
    assert not verdict.is_refusal
    assert [(f.rule, f.text) for f in verdict.findings] == [("negative_language", "我们不能")]


@pytest.mark.parametrize(
    ("draft", "query", "span"),
    [
        ("价格都是统一的，现在下单可以用店铺券。", "能便宜20吗", "价格都是统一的，现在下单可以用店铺券。"),  # neutral
        ("抱歉，L码已经卖完了，M码还有。", "还有L码吗", "抱歉"),  # 抱歉 alone
        ("西藏不包邮，要补15元。", "西藏包邮吗", "西藏不包邮，要补15元。"),  # a bare no
    ],
)
def test_missed_refusals_are_found(draft: str, query: str, span: str, rules: RuleSet) -> None:
    verdict = check(draft, rules=rules, query=query)
    assert verdict.is_refusal
    assert [(f.rule, f.text) for f in verdict.findings] == [("refusal_without_apology", span)]
    assert verdict.fixed is not None and verdict.fixed.startswith("非常抱歉")
    assert verdict.fixed.replace("非常抱歉，", "").replace("非常抱歉", "") in (draft, draft.replace("抱歉，", ""))


def test_a_safe_fix_adds_no_claim_and_marks_what_the_agent_must_rewrite(rules: RuleSet) -> None:
    verdict = check("我们不能给您便宜", rules=rules)
    assert verdict.fixed is None  # was "非常抱歉，已经是优惠后的价格了": a claim nobody made
    negative = [f for f in verdict.findings if f.rule == "negative_language"]
    assert negative and all("坐席" in f.message for f in negative)


def test_a_fix_only_rewords_drops_or_adds_the_apology(rules: RuleSet) -> None:
    verdict = check("亲亲，这款很好，但是库存不多了，么么哒", rules=rules)
    assert verdict.fixed == "亲，这款很好，不过库存不多了"
    assert check("抱歉，这款卖完了。", rules=rules, query="还有吗").fixed == "非常抱歉，这款卖完了。"


def test_a_fix_table_entry_that_states_a_fact_is_refused(tmp_path: object) -> None:
    import yaml

    from agent.errors import CorpusError

    path = REPO_ROOT / "corpus" / "tone_rules.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["fixes"].append({"rule": "negative_language", "match": "不能便宜", "replace": "明天给您便宜5元"})
    target = tmp_path / "tone_rules.yaml"  # type: ignore[operator]
    target.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CorpusError) as caught:
        load_rules(target)
    assert any("replace" in p and "明天给您便宜5元" in p for p in caught.value.problems)
