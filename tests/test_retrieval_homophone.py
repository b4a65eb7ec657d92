"""Homophone typos of trade terms are corrected before both retrievers search; real words are not."""

from __future__ import annotations

import json

import pytest

from agent.config import REPO_ROOT
from agent.retrieval.homophone import Corrector, corrector_for
from agent.retrieval.hybrid import HybridRetriever
from agent.retrieval.index import Scored
from agent.text import normalize_query

RETRIEVAL_DIR = REPO_ROOT / "corpus" / "retrieval"


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("新僵发货吗 加钱不", "新疆发货吗 加钱不"),
        ("发漂能开不 天猫的", "发票能开不 天猫的"),
        ("西臧到不到 身通", "西藏到不到 申通"),
        ("包由吗", "包邮吗"),
        ("吊排剪了还能退吗", "吊牌剪了还能退吗"),
        ("尺马偏大吗", "尺码偏大吗"),
        ("货到付宽行吗", "货到付款行吗"),
        ("色查大不", "色差大不"),
    ],
)
def test_a_homophone_typo_of_a_trade_term_is_corrected(typed: str, meant: str) -> None:
    assert corrector_for(RETRIEVAL_DIR)(normalize_query(typed)) == meant


@pytest.mark.parametrize(
    "clean",
    [
        "能不能便宜点",  # 宜点 sounds like 一点 but sits inside 便宜
        "我很喜欢那个颜色",  # 那个 is a word, not a typo of 哪个
        "一般用哪个快递公司寄件",  # 寄件, not 几件
        "下午两点付款今天会出货吗",
        "钱不够能先付一半吗",
    ],
)
def test_real_words_are_left_as_the_customer_wrote_them(clean: str) -> None:
    assert corrector_for(RETRIEVAL_DIR)(normalize_query(clean)) == normalize_query(clean)


def test_no_message_of_the_golden_set_is_rewritten() -> None:
    """The golden set is written without typos: a correction there would be a false one."""
    correct = corrector_for(RETRIEVAL_DIR)
    lines = (REPO_ROOT / "eval" / "golden.jsonl").read_text(encoding="utf-8").splitlines()
    messages = [normalize_query(json.loads(line)["message"]) for line in lines if line.strip()]
    changed = [m for m in messages if correct(m) != m]
    assert len(messages) > 150
    assert changed == []


def test_two_terms_that_sound_alike_correct_nothing() -> None:
    correct = Corrector(["包邮", "包油"])
    assert correct("包由吗") == "包由吗"
    assert Corrector(["包邮"])("包由吗") == "包邮吗"


class _Recording:
    def __init__(self) -> None:
        self.queries: list[str] = []

    def search(self, query: str, depth: int) -> list[Scored]:
        self.queries.append(query)
        return [Scored("shipping.free_shipping", "shipping", 1.0)]


def test_the_retriever_searches_the_corrected_query() -> None:
    lexical = _Recording()
    retriever = HybridRetriever(None, lexical, "bm25", correct=Corrector(["包邮"]))
    hits = retriever.retrieve("包由吗？", 3)
    assert lexical.queries == ["包邮吗?"]
    assert [h.script_id for h in hits] == ["shipping.free_shipping"]
