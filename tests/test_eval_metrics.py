"""Eval metrics: character-level lexical scores, facts after normalisation, behaviour metrics."""

from __future__ import annotations

import random

import pytest

from agent.evaluation.metrics import (
    bleu,
    chrf,
    citation_validity,
    embedding_cosine,
    hit_at_k,
    latency,
    lcs_length,
    must_include,
    must_not,
    ok_grounded,
    refusal_agreement,
    rouge_l,
    tone,
    zh_tokens,
)
from agent.evaluation.numerals import read_numeral
from agent.guardrails import default_rules
from agent.retrieval import HashEmbedder

REPLY = "亲，本店默认发申通快递，普通城市包邮，一般2到4天送达；想更快可以另补15元改发顺丰。"

# sentence BLEU (tokenize="zh", effective order) and chrF (defaults) from sacrebleu 2.6.0, / 100.
SACREBLEU = [
    ("亲，申通快递一般两到四天到，顺丰需另加十五元。", "亲，默认发申通，一般2到4天送达；顺丰加15元。", 0.0801, 0.1346),
    (
        "非常抱歉，本店商品不议价，满280元送小礼物哦",
        "非常抱歉，价格已是活动价，满280元可以送您一份小礼物。",
        0.3203,
        0.3215,
    ),
    ("今天下单今天发货吗", "今天下单今天发货么", 0.8633, 0.8341),
    ("您好，EMS 全国20元，2到5天到达。", "您好，EMS全国统一20元，超重也无需加钱，2-5天送达。", 0.2506, 0.3350),
    ("好的", "好的呀", 0.6065, 0.6364),
]


@pytest.mark.parametrize("metric", [rouge_l, chrf, bleu])
def test_identical_chinese_scores_one(metric: object) -> None:
    score = metric(REPLY, REPLY)  # type: ignore[operator]
    assert score.value == pytest.approx(1.0)
    assert score.reason


def test_whitespace_bleu_sees_one_token_where_zh_tokens_see_characters() -> None:
    draft, golden = "今天下单今天发货吗", "今天下单今天发货么"
    assert bleu(draft, golden, tokenize=str.split, smooth="none").value == 0.0
    assert bleu(draft, golden, smooth="none").value == pytest.approx(0.8633, abs=1e-4)
    assert zh_tokens("亲，EMS 20元，15:00前") == ["亲", ",", "ems", "20", "元", ",", "15:00", "前"]


@pytest.mark.parametrize(("draft", "golden", "sb_bleu", "sb_chrf"), SACREBLEU)
def test_bleu_and_chrf_agree_with_sacrebleu(draft: str, golden: str, sb_bleu: float, sb_chrf: float) -> None:
    assert bleu(draft, golden).value == pytest.approx(sb_bleu, abs=1e-4)
    assert chrf(draft, golden).value == pytest.approx(sb_chrf, abs=1e-4)


def test_lexical_scores_fall_with_distance_and_fold_traditional() -> None:
    near = "亲，本店默认发申通快递，普通城市包邮，一般2到4天送达。"
    far = "您好，请问有什么可以帮您？"
    for metric in (rouge_l, chrf, bleu):
        assert metric(near, REPLY).value > metric(far, REPLY).value  # type: ignore[operator]
    assert rouge_l("順豐另補十五元", "顺丰另补十五元").value == pytest.approx(1.0)


def test_rouge_l_reason_counts_the_common_subsequence() -> None:
    score = rouge_l("申通包邮", "申通快递包邮")
    assert score.value == pytest.approx(2 * 1.0 * (4 / 6) / (1.0 + 4 / 6))
    assert "LCS 4" in score.reason


def test_bit_parallel_lcs_matches_dynamic_programming() -> None:
    def reference(a: str, b: str) -> int:
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
        return table[-1][-1]

    rng = random.Random(7)
    for _ in range(300):
        a = "".join(rng.choice("申通顺丰包邮") for _ in range(rng.randint(0, 25)))
        b = "".join(rng.choice("申通顺丰包邮") for _ in range(rng.randint(0, 25)))
        assert lcs_length(a, b) == reference(a, b)


@pytest.mark.parametrize(
    ("run", "digits"),
    [("十五", "15"), ("十", "10"), ("二十", "20"), ("一百零五", "105"), ("二〇二四", "2024"), ("三万", "30000"),
     ("一万五千", "15000"), ("两", "2"), ("四", "4")],
)  # fmt: skip
def test_chinese_numerals_read_as_digits(run: str, digits: str) -> None:
    assert read_numeral(run) == digits


@pytest.mark.parametrize(
    ("draft", "fact"),
    [
        ("顺丰需要另补十五元", "15元"),
        ("申通一般两到四天送达", "2到4天"),
        ("支持七天无理由退换", "7天"),
        ("运费１５元", "15元"),  # full-width digits
        ("色牢度符合国标四级", "国标4级"),
    ],
)
def test_must_include_reads_chinese_numerals_and_full_width(draft: str, fact: str) -> None:
    assert must_include(draft, [fact]).value == 1.0


@pytest.mark.parametrize(
    ("draft", "fact"),
    [
        ("15:00前付款当天发出", "15点"),
        ("15点前付款当天发出", "15:00前"),
        ("下午三点前付款的当天发", "15点"),
        ("十五点以后付款的按顺序发", "15:00"),
        ("15:00前付款的订单当天发出", "3点"),  # a bare 3点 is also the afternoon cut-off
    ],
)
def test_must_include_reads_an_hour_written_any_way(draft: str, fact: str) -> None:
    assert must_include(draft, [fact]).value == 1.0


def test_an_hour_is_not_found_in_another_number() -> None:
    assert must_include("5点前付款当天发，运费150元", ["15点"]).value == 0.0
    assert must_not("下午5点前发出", ["17点"]).value == 0.0  # the forbidden hour, however written
    assert must_include("上午9点前付款", ["21点"]).value == 0.0  # the morning is not the evening


def test_must_include_matches_traditional_both_ways() -> None:
    assert must_include("可以改寄順豐，運費另補15元", ["顺丰", "运费"]).value == 1.0
    assert must_include("可以改寄顺丰，运费另补15元", ["順豐", "運費"]).value == 1.0


def test_must_include_names_the_missing_facts() -> None:
    score = must_include("默认发申通快递", ["申通", "15元", "顺丰"])
    assert score.value == pytest.approx(1 / 3)
    assert "15元" in score.reason and "顺丰" in score.reason and "申通" not in score.reason.split("(")[0]
    assert must_include("anything", []).value is None


def test_must_not_points_at_the_original_span() -> None:
    text = "亲，這個價格但　是可以商量"
    score = must_not(text, ["但是", "不讲价"])
    assert score.value == pytest.approx(0.5)
    ((start, end, label),) = score.spans
    assert text[start:end] == "但　是" and label == "must_not"
    assert must_not("亲，可以的", ["但是"]).value == 1.0


def test_tone_is_one_without_findings_and_lists_them_otherwise() -> None:
    rules = default_rules()
    assert tone("您好，本店默认发申通快递。", rules).value == 1.0
    text = "亲亲，但是这个价格我们不能改哦"
    score = tone(text, rules)
    assert score.value == 0.0
    found = {rule for _, _, rule in score.spans}
    assert {"over_intimacy", "contains_danshi"} <= found
    for start, end, rule in score.spans:
        assert rule in score.reason and text[start:end] in score.reason


def test_refusal_agreement() -> None:
    assert refusal_agreement(True, True).value == 1.0
    assert refusal_agreement(False, False).value == 1.0
    wrong = refusal_agreement(False, True)
    assert wrong.value == 0.0 and "expected a refusal" in wrong.reason


def test_hit_at_k_counts_expected_scripts_within_depth() -> None:
    retrieved = [("shipping.ems", "shipping.sf_on_request", "delivery_time.ship_when"), ("bargaining.ask_discount",)]
    assert hit_at_k(["shipping.sf_on_request"], retrieved, k=2).value == 1.0
    deep = hit_at_k(["delivery_time.ship_when", "bargaining.ask_discount"], retrieved, k=2)
    assert deep.value == 0.5 and "delivery_time.ship_when" in deep.reason
    assert hit_at_k([], retrieved, k=5).value is None


def test_citation_validity_names_scripts_that_were_not_retrieved() -> None:
    retrieved = [("shipping.ems",), ("bargaining.ask_discount",)]
    assert citation_validity(["shipping.ems"], retrieved).value == 1.0
    invalid = citation_validity(["shipping.ems", "invoice.provide"], retrieved)
    assert invalid.value == 0.5 and "invoice.provide" in invalid.reason
    assert citation_validity([], retrieved).value is None


def test_ok_grounded_scores_only_drafts_an_agent_may_send_as_they_are() -> None:
    assert ok_grounded("ok", ["shipping.ems", "bargaining.ask_discount"], ["shipping.ems"]).value == 1.0
    wrong = ok_grounded("ok", ["returns.window_passed"], ["refund.refund_progress"])
    assert wrong.value == 0.0 and "returns.window_passed" in wrong.reason and "refund.refund_progress" in wrong.reason
    assert ok_grounded("needs_review", ["returns.window_passed"], ["refund.refund_progress"]).value is None
    assert ok_grounded("ok", ["shipping.ems"], []).value is None


def test_latency_reports_milliseconds_by_stage() -> None:
    score = latency({"total": 42.5, "retrieve": 30.0, "draft": 2.0})
    assert score.value == 42.5 and "retrieve 30.0" in score.reason


def test_embedding_cosine_through_the_embedder_seam() -> None:
    embedder = HashEmbedder()
    same = embedding_cosine(REPLY, REPLY, embedder)
    assert same.value == pytest.approx(1.0)
    assert "hash" in same.reason
    other = embedding_cosine("请问有什么可以帮您", REPLY, embedder)
    assert other.value is not None and other.value < 0.9
