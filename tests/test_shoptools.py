"""The seeds' shop tools: the welcome auto-reply per shop and quick phrases."""

from __future__ import annotations

import json

import pytest

from agent.cli import main
from agent.config import REPO_ROOT
from agent.errors import NotFoundError, UnknownShopError
from agent.guardrails import check as check_with
from agent.shoptools import phrases, welcome
from agent.types import Verdict
from agent.workspace import load_workspace

SHIPPED = load_workspace(REPO_ROOT)  # the shipped workspace


def check(text: str, declared_refusal: bool | None = None) -> Verdict:
    return check_with(text, rules=SHIPPED.tone, declared_refusal=declared_refusal)


@pytest.mark.parametrize("shop", ["default", "tmall_flagship"])
def test_each_shop_has_a_welcome_that_passes_the_guardrail(shop: str) -> None:
    result = welcome(SHIPPED, shop)
    assert result.ok
    assert check(result.text).ok
    assert "{" not in result.text
    assert "15:00" in result.text  # the shop's highlights: same-day dispatch and the free-shipping rule


def test_the_welcome_names_the_shop_it_is_for() -> None:
    assert "木夕天猫旗舰店" in welcome(SHIPPED, "tmall_flagship").text
    assert "木夕天猫旗舰店" not in welcome(SHIPPED, "default").text


def test_phrases_filter_by_category_and_text() -> None:
    bargaining = phrases(SHIPPED, category="bargaining")
    assert bargaining and {p.category for p in bargaining} == {"bargaining"}
    assert any(p.declines for p in bargaining)
    coupons = phrases(SHIPPED, search="优惠券")
    assert coupons
    tags = {s.id: "".join(s.tags) for s in SHIPPED.corpus.scripts}
    assert all("优惠券" in p.text + p.title + tags[p.script_id] for p in coupons)
    assert len(coupons) < len(phrases(SHIPPED))
    both = phrases(SHIPPED, category="bargaining", search="优惠券")
    assert {p.script_id for p in both} <= {p.script_id for p in bargaining}


def test_phrases_search_matches_traditional_input() -> None:
    traditional = {p.script_id for p in phrases(SHIPPED, search="順豐")}
    assert traditional
    assert traditional == {p.script_id for p in phrases(SHIPPED, search="顺丰")}


def test_phrases_fill_the_chosen_shop() -> None:
    default = {p.script_id: p.text for p in phrases(SHIPPED, category="shipping")}
    tmall = {p.script_id: p.text for p in phrases(SHIPPED, category="shipping", shop="tmall_flagship")}
    assert any("申通" in t for t in default.values())
    assert any("中通" in t for t in tmall.values())
    assert all("{" not in t for t in [*default.values(), *tmall.values()])


def test_every_declining_phrase_passes_the_refusal_rule() -> None:
    for phrase in phrases(SHIPPED):
        assert check(phrase.text, declared_refusal=phrase.declines).ok, phrase.script_id


def test_unknown_category_is_a_clear_error() -> None:
    with pytest.raises(NotFoundError, match="bargaining"):
        phrases(SHIPPED, category="bargain")


def test_cli_phrases_and_welcome(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["phrases", "bargaining", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed and all(p["category"] == "bargaining" for p in listed)
    assert main(["phrases", "shipping"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[") and "shipping." in out
    assert main(["welcome", "--shop", "tmall_flagship"]) == 0
    assert "木夕天猫旗舰店" in capsys.readouterr().out
    assert main(["welcome", "--shop", "nope"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("name", ["s" * 300, "../shops/default", "default.yaml", ""])
def test_a_long_or_malformed_shop_name_is_an_unknown_shop(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UnknownShopError) as err:
        welcome(SHIPPED, name)
    assert len(err.value.message) < 200
    assert "default" in err.value.message  # the known shops are named
    with pytest.raises(UnknownShopError):
        phrases(SHIPPED, name)
    if name:
        assert main(["welcome", "--shop", name]) == 2
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1
        assert "Traceback" not in captured.err
