"""The sentence composer on hand-made groundings: each fact once, one opening, apology and
closing, no broken piece; state assertions only when established; topics from earlier turns;
the direct baseline; the composer takes its style and rules as data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.config import REPO_ROOT
from agent.corpus import fill
from agent.drafting.base import Candidate, Grounding, Question
from agent.drafting.composer import ComposerStyle, ScriptComposer, compose, established_states, load_style
from agent.drafting.direct import DirectBackend
from agent.evaluation.quality import fragment, repeated_fact
from agent.guardrails import check, default_rules
from agent.types import Order, Script, Shop, Turn
from agent.workspace import load_workspace


@pytest.fixture(scope="module")
def style() -> ComposerStyle:
    return load_style(REPO_ROOT / "corpus")


@pytest.fixture(scope="module")
def scripts() -> dict[str, Script]:
    return load_workspace(REPO_ROOT).scripts_by_id


@pytest.fixture(scope="module")
def shop() -> Shop:
    return load_workspace(REPO_ROOT).shop("default")


def cand(script: Script, score: float = 0.3, rank: int = 1) -> Candidate:
    return Candidate(script, score, dense_rank=rank, bm25_rank=rank)


def ground(shop: Shop, *questions: tuple[str, list[Candidate]], order: Order | None = None, turns=()) -> Grounding:
    qs = tuple(Question(text, tuple(cands)) for text, cands in questions)
    return Grounding(" ".join(t for t, _ in questions), qs, shop, order, tuple(turns))


def test_a_fact_shared_by_two_scripts_is_said_once_with_one_apology_and_no_fragment(style: ComposerStyle) -> None:
    a = "亲，非常抱歉，本店商品都是明码实价。订单满280元还会随机送一份小礼品。"
    b = "您好，非常抱歉给您带来困扰！订单满280元还会随机送一份小礼品，下午15:00前付款当天发出。有任何问题随时联系我们。"
    style = style.model_copy(update={"close_with": "还有其他问题随时联系我们。"})  # a workspace that closes
    text = compose([a, b], style, closing=True)
    assert text.count("订单满280元还会随机送一份小礼品") == 1
    assert text.count("非常抱歉") == 1 and "给您带来困扰" not in text
    assert text.startswith("亲，非常抱歉")
    assert text.count("随时联系") == 1 and text.endswith(style.close_with)
    assert "15:00" in text
    assert repeated_fact(text).value == 0.0 and fragment(text).value == 0.0


def test_a_run_crossing_a_clause_boundary_counts_as_repeated(style: ComposerStyle) -> None:
    a = "亲，发往新疆的包裹路途较远，快递公司对这些地区加收费用，需要另补15元。"
    b = "本店普通城市包邮；新疆路途较远，快递公司另收费用，需要加15元运费。"
    text = compose([a, b], style)
    assert repeated_fact(text).value == 0.0, text


def test_a_short_repeated_fact_goes_but_one_with_a_new_number_stays(style: ComposerStyle) -> None:
    # 可以指定顺丰吗 着急用: the urgent answer says the 顺丰 fee again in other words.
    sf = "亲，可以的，指定顺丰需另补15元运费，补好后15:00前付款当天发出。"
    urgent = "另补15元可改发顺丰，会快一些。"
    text = compose([sf, urgent], style)
    assert text.count("15元") == 1 and repeated_fact(text).value == 0.0, text
    assert "会快一些" not in text  # what is left of the repeated sentence is no fact of its own
    # 西藏运费多少 几天: both answers name the regions, but the fee is a number not said yet.
    days = "新疆、西藏、广西到货通常比普通地区的2到4天久一些，着急可选EMS，一般2到5天送达。"
    fee = "本店发申通普通城市包邮，新疆、西藏、广西需加15元运费，指定顺丰需另补15元。"
    text = compose([days, fee], style)
    assert "需加15元运费" in text and "2到5天" in text, text
    # 寄回运费您承担 said by the exchange answer is not said again by the returns answer.
    exchange = "可以，7天内吊牌完好、未穿洗可换码换色，订单里申请换货，寄回运费您承担。"
    returns = "7天无理由退换寄回运费您承担，质量问题运费本店承担，请发照片、订单号。"
    text = compose([exchange, returns], style)
    assert text.count("寄回运费您承担") == 1 and "质量问题运费本店承担" in text, text


def test_an_answer_beside_others_keeps_its_facts_and_drops_the_rest(style: ComposerStyle) -> None:
    # 图片是实拍吗 运费你们出吗: each answer keeps what decides it (who pays, a number, what the
    # question names) and drops its courtesy clauses.
    photos = "是的，商品图片都是实物拍摄，因光线和显示屏不同，颜色可能有轻微差异。"
    damaged = "非常抱歉，请发订单号和破损照片，可补发、换货或退款，来回运费由本店承担，也可转接主管。"
    text = compose([photos, damaged], style, questions=["图片是实拍吗", "运费你们出吗"])
    assert "实物拍摄" in text and "来回运费由本店承担" in text and "补发" in text, text
    assert "显示屏" not in text and "转接主管" not in text, text
    # A clause that names what the customer asked stays (超重也无需加钱 to 超重要加钱吗).
    ems = "可以发EMS，运费全国统一20元，超重也无需加钱，一般2到5天送达。"
    text = compose([ems, photos], style, questions=["EMS多少钱 超重要加钱吗", "图片是实拍吗"])
    assert "超重也无需加钱" in text and "2到5天" in text, text
    # A single answer keeps its reply's clauses.
    assert "显示屏" in compose([photos], style, questions=["图片是实拍吗"])


def test_the_remote_areas_named_twice_are_named_once(style: ComposerStyle, shop: Shop) -> None:
    days = "发往{remote_areas}到货通常比普通地区久一些，一般{ems_days}送达。"
    fee = "本店普通城市包邮，{remote_areas}需加{remote_fee}运费。"
    text = compose([days, fee], style, values=shop.vars)
    assert text.count(shop.vars["remote_areas"]) == 1 and "这几个地区需加15元运费" in text, text
    assert repeated_fact(text).value == 0.0, text


def test_one_opening_even_when_every_script_greets(style: ComposerStyle) -> None:
    text = compose(["您好，本店默认发申通快递。", "亲，可以发顺丰，需另补15元。"], style)
    assert text.startswith("亲，") and "您好" not in text and text.count("亲，") == 1


def test_the_answer_takes_sentences_up_to_its_budget(style: ComposerStyle) -> None:
    reply = "您好，本店默认发申通快递，普通城市包邮，一般2到4天送达。您把收货地址告诉我，我帮您确认申通能否送到。"
    text = compose([reply], style.model_copy(update={"first_answer_chars": 10}))
    assert "申通快递" in text and "收货地址" not in text


def test_a_greeting_beside_a_question_says_its_brief_and_cites_it(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop
) -> None:
    composer = ScriptComposer(style, default_rules())
    hello = cand(scripts["greeting.hello"])
    size = cand(scripts["size.brand_fit"])
    draft = composer.draft(ground(shop, ("在吗", [hello]), ("这个码偏大偏小", [size])))
    assert draft.text.startswith("亲，在的！") and "欢迎光临" not in draft.text
    assert draft.cited_ids == ["greeting.hello", "size.brand_fit"]
    # Alone, the greeting answers with its whole reply.
    assert "欢迎光临" in composer.draft(ground(shop, ("在吗", [hello]))).text
    # Before a declining answer nothing comes first: its first sentence opens with the apology.
    discount = cand(scripts["bargaining.ask_discount"])
    declined = composer.draft(ground(shop, ("在吗", [hello]), ("能便宜点吗", [discount])))
    assert declined.text.startswith("亲，非常抱歉") and "在的" not in declined.text
    assert declined.cited_ids == ["bargaining.ask_discount"]


def test_several_answers_each_take_their_brief_and_a_single_answer_its_reply(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop
) -> None:
    composer = ScriptComposer(style, default_rules())
    sf, ems = scripts["shipping.sf_on_request"], scripts["shipping.ems"]
    both = composer.draft(ground(shop, ("能发顺丰吗", [cand(sf)]), ("EMS多少钱", [cand(ems)])))
    values = shop.vars
    # Each brief's clauses that state a number are in, in the brief's words (a clause the question
    # does not ask about, 超重也无需加钱 to EMS多少钱, may go: see several_clause_chars).
    for script in (sf, ems):
        facts = [c for c in re.split("[，。]", fill(str(script.brief), values)) if re.search(r"\d", c)]
        assert facts and all(c in both.text for c in facts), (facts, both.text)
    assert both.cited_ids == ["shipping.sf_on_request", "shipping.ems"]
    alone = composer.draft(ground(shop, ("能发顺丰吗", [cand(sf)])))
    assert alone.text.startswith("亲，") and fill(sf.reply, values).split("。")[0][3:] in alone.text


def test_a_message_of_thanks_only_gets_a_whole_reply(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop
) -> None:
    """Standalone-only scripts (farewells) answering on their own are answers, not leads."""
    composer = ScriptComposer(style, default_rules())
    thanks = [cand(scripts["farewell.satisfied"])], [cand(scripts["farewell.thanks_bye"])]
    draft = composer.draft(ground(shop, ("收到啦 挺好的", thanks[0]), ("谢谢", thanks[1])))
    assert len(draft.text) > 10 and "{" not in draft.text, draft.text


@pytest.mark.parametrize(
    ("asserting", "neutral", "state", "unsaid", "said", "order"),
    [
        # A paid script needs a paid order or the customer's word.
        (
            "payment.paid_thanks",
            "greeting.hello",
            "paid",
            "帮我核对一下地址",
            "刚付款了，帮我核对一下地址",
            Order(status="paid"),
        ),
        # A remote area's delivery time needs a remote area named, by the customer or the order.
        (
            "remote_area.remote_delivery_time",
            "delivery_time.how_many_days",
            "remote",
            "多少天到广州",
            "到拉萨得几天",
            Order(region="新疆乌鲁木齐市"),
        ),
        # A colour complaint after receipt (send photos to check) needs the goods in hand.
        (
            "colour.differs_on_receipt",
            "colour.colour_difference",
            "received",
            "圖片跟實物有色差嗎",
            "收到的颜色跟图上差好多",
            Order(status="delivered"),
        ),
    ],
)
def test_a_script_that_asserts_a_state_needs_the_state_established(
    style: ComposerStyle,
    scripts: dict[str, Script],
    shop: Shop,
    asserting: str,
    neutral: str,
    state: str,
    unsaid: str,
    said: str,
    order: Order,
) -> None:
    cands = [cand(scripts[asserting], 0.4), cand(scripts[neutral], 0.2, rank=2)]
    composer = ScriptComposer(style, default_rules())
    assert composer.draft(ground(shop, (unsaid, cands))).cited_ids == [neutral]
    by_order = ground(shop, (unsaid, cands), order=order)
    assert state in established_states(by_order, style)
    assert composer.draft(by_order).cited_ids == [asserting]
    by_word = ground(shop, (said, cands))
    assert state in established_states(by_word, style)
    assert asserting in composer.draft(by_word).cited_ids


def test_a_neutral_script_stands_in_surely_for_one_whose_state_is_not_established(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop
) -> None:
    # 圖片跟實物有色差嗎 before buying: the colour-difference answer, as sure as the complaint
    # script it stands in for, instead of a draft sent to review.
    cands = [cand(scripts["colour.differs_on_receipt"], 0.4), cand(scripts["colour.colour_difference"], 0.2, rank=2)]
    grounding = ground(shop, ("圖片跟實物有色差嗎", cands))
    draft = ScriptComposer(style, default_rules()).draft(grounding)
    assert draft.cited_ids == ["colour.colour_difference"] and not draft.needs_review
    assert any("colour.differs_on_receipt" in note for note in draft.notes)  # the skip is still noted
    without = style.model_copy(update={"neutral": {}})
    fallback = ScriptComposer(without, default_rules()).draft(grounding)
    assert fallback.cited_ids == ["colour.colour_difference"] and fallback.needs_review


def test_a_bargaining_answer_needs_a_message_about_price(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop
) -> None:
    """本店明码实价 declines a discount: not the answer to a fee (要补多少钱) or to a demand that only
    threatens not to buy (不然不买 after a pet name), whatever retrieval ranks first."""
    composer = ScriptComposer(style, default_rules())
    for said, other in (
        ("可以寄顺丰吗？要补多少钱", "shipping.sf_on_request"),
        ("以后叫我老公 不然不买", "rule_breaking.change_address_form"),
        ("支付宝没钱了 还差一点", "payment.short_of_money"),
    ):
        cands = [cand(scripts["bargaining.ask_discount"], 0.4), cand(scripts[other], 0.3, rank=2)]
        assert "bargains" not in established_states(ground(shop, (said, [])), style), said
        assert composer.draft(ground(shop, (said, cands))).cited_ids == [other], said
    for said in ("老顾客了 打个八折呗", "别家同款才59 按59卖我呗", "能便宜点吗", "满280送什么", "能pyd不"):
        assert "bargains" in established_states(ground(shop, (said, [])), style), said
    cands = [cand(scripts["bargaining.ask_discount"], 0.4), cand(scripts["shipping.sf_on_request"], 0.3, rank=2)]
    assert "bargaining.ask_discount" in composer.draft(ground(shop, ("能便宜点吗", cands))).cited_ids


def test_a_customer_giving_their_own_number_is_not_declined_a_personal_topic(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop
) -> None:
    """A phone number typed for delivery (masked before retrieval) asks no personal topic, no other
    customer's data and no payment off the platform: the 顺丰 question is answered, not declined."""
    composer = ScriptComposer(style, default_rules())
    said = "顺封要加多少钱 我电话【手机号】 到了直接打我"
    for declining in ("abuse.harassment", "rule_breaking.customer_info", "rule_breaking.off_platform"):
        cands = [cand(scripts[declining], 0.4), cand(scripts["shipping.sf_on_request"], 0.3, rank=2)]
        assert composer.draft(ground(shop, (said, cands))).cited_ids == ["shipping.sf_on_request"], declining
    for state, asked in (
        ("personal", "客服小姐姐有男朋友吗"),
        ("others_data", "刚才那个买同款的人地址电话给我"),
        ("off_platform", "加个微信私下转账吧"),
    ):
        assert state in established_states(ground(shop, (asked, [])), style), asked


def test_a_customer_who_says_when_they_paid_has_paid(style: ComposerStyle, shop: Shop) -> None:
    for said in ("中午一点多付的款，今天能发出去吗", "我昨天付旳款 发了吗", "啱啱俾咗錢 幾時寄出？"):
        assert "paid" in established_states(ground(shop, (said, [])), style), said
    for unsaid in ("几点前付款当天发", "付款方式有哪些"):
        assert "paid" not in established_states(ground(shop, (unsaid, [])), style), unsaid


def test_a_passed_return_window_needs_the_customer_to_say_so(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop
) -> None:
    # 您的订单已超过期限 is said only to a customer whose goods came longer ago than the window.
    cands = [cand(scripts["returns.window_passed"], 0.4), cand(scripts["returns.how_to_return"], 0.2, rank=2)]
    composer = ScriptComposer(style, default_rules())
    for unsaid in ("收到以後不喜歡，七天內可以退嗎", "等了半个月了 到底发不发货", "买了三天能退吗"):
        assert "window_passed" not in established_states(ground(shop, (unsaid, [])), style), unsaid
        assert composer.draft(ground(shop, (unsaid, cands))).cited_ids == ["returns.how_to_return"]
    for said in ("东西收到二十天了一直没拆，现在还能退吗", "都过去半个月了还能退吗", "衣服收到8天了能退不"):
        assert "window_passed" in established_states(ground(shop, (said, [])), style), said
        assert composer.draft(ground(shop, (said, cands))).cited_ids == ["returns.window_passed"]


def test_cash_on_delivery_is_not_read_as_paid(style: ComposerStyle, shop: Shop) -> None:
    assert "paid" not in established_states(ground(shop, ("可以货到付款吗", [])), style)
    assert "out_of_stock" not in established_states(ground(shop, ("粉色M码还有吗，没有的话什么时候有货", [])), style)


def test_a_price_change_is_never_asserted(style: ComposerStyle, scripts: dict[str, Script], shop: Shop) -> None:
    changed = cand(scripts["payment.price_changed"], 0.5)
    draft = ScriptComposer(style, default_rules()).draft(ground(shop, ("价格改好了吗", [changed])))
    assert "修改好了" not in draft.text and draft.needs_review


def test_earlier_turns_set_the_topic_of_a_follow_up(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop
) -> None:
    turns = [Turn(role="customer", text="衣服收到袖口开线了"), Turn(role="agent", text="亲，麻烦拍一下照片。")]
    cands = [cand(scripts["returns.shipping_who_pays"], 0.3), cand(scripts["damaged.quality_defect"], 0.2, 3)]
    draft = ScriptComposer(style, default_rules()).draft(ground(shop, ("那我退了吧，运费谁出", cands), turns=turns))
    assert draft.cited_ids == ["damaged.quality_defect"]
    assert "本店承担" in draft.text and "需要您承担" not in draft.text


def test_nothing_fits_hands_over_for_review(style: ComposerStyle, shop: Shop) -> None:
    draft = ScriptComposer(style, default_rules()).draft(ground(shop, ("这是什么", [])))
    assert draft.needs_review and draft.text == style.handoff


def test_composed_refusals_open_with_the_apology_and_pass_the_guardrail(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop
) -> None:
    g = ground(
        shop,
        ("包邮吗", [cand(scripts["shipping.free_shipping"], 0.4)]),
        ("能便宜点吗", [cand(scripts["bargaining.ask_discount"], 0.4)]),
    )
    draft = ScriptComposer(style, default_rules()).draft(g)
    assert draft.is_refusal and draft.text.startswith("亲，非常抱歉")
    assert check(draft.text, rules=default_rules(), declared_refusal=True).ok


def test_direct_returns_the_top_ranked_reply_verbatim(scripts: dict[str, Script], shop: Shop) -> None:
    g = ground(
        shop,
        ("包邮吗", [cand(scripts["shipping.free_shipping"], 0.4)]),
        ("能便宜点吗", [cand(scripts["bargaining.ask_discount"], 0.3)]),
    )
    proposal = DirectBackend("handoff").draft(g)
    assert proposal.cited_ids == ["shipping.free_shipping"]
    assert proposal.text.startswith("您好，本店发申通普通城市包邮") and "{" not in proposal.text
    assert DirectBackend("handoff").draft(ground(shop, ("?", []))).needs_review


def test_the_composer_is_built_from_data_and_reads_no_file(
    style: ComposerStyle, monkeypatch: pytest.MonkeyPatch
) -> None:
    composer = ScriptComposer(style, default_rules())

    def no_reads(*args: object, **kwargs: object) -> str:
        raise AssertionError("the composer read a file")

    monkeypatch.setattr(Path, "read_text", no_reads)
    monkeypatch.setattr(Path, "read_bytes", no_reads)
    assert compose(["您好，本店默认发申通快递。"], style)
    assert composer.name == "script"


def test_a_paraphrase_of_what_an_earlier_answer_said_is_dropped(style: ComposerStyle) -> None:
    """Two scripts about one topic (实拍 and 色差) say the same fact in other words: it is said once."""
    a = "亲，我们的商品图片都是实物拍摄的，光线和屏幕不同可能会有轻微色差。"
    b = "商品都是实物拍摄的。如果收到后颜色差异明显，可以联系我们处理。"
    text = compose([a, b], style)
    assert text.count("实物拍摄") == 1
    assert "颜色差异明显" in text  # what the second answer adds is kept
    assert fragment(text).value == 0.0


@pytest.mark.parametrize(
    ("sid", "question"),
    [
        ("logistics.tracking_number", "单号多少"),
        ("logistics.parcel_slow", "五天了还没到"),
        ("logistics.urge_courier", "帮我催催"),
    ],
)
def test_a_known_order_gives_its_tracking_number_instead_of_asking_for_the_order(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop, sid: str, question: str
) -> None:
    """The agent's tool knows the order: the draft names its courier and tracking number and does
    not ask the customer for the order number; without the order, or without a tracking number,
    the script's own words ask for it."""
    composer = ScriptComposer(style, default_rules())
    cands = [cand(scripts[sid], 0.4)]
    shipped = Order(status="shipped", courier="申通", tracking_no="773012458861")
    with_order = composer.draft(ground(shop, (question, cands), order=shipped))
    assert "773012458861" in with_order.text and "申通" in with_order.text, with_order.text
    assert "订单号" not in with_order.text, with_order.text
    assert with_order.cited_ids == [sid]
    for order in (None, Order(status="shipped", courier="申通")):
        plain = composer.draft(ground(shop, (question, cands), order=order))
        assert "订单号" in plain.text and "773012458861" not in plain.text, plain.text
    # The number is backed by the order: the claim check finds nothing unsupported.
    from agent.drafting.grounding import sources

    assert "773012458861" in "".join(sources(ground(shop, (question, cands), order=shipped), [sid]))


@pytest.mark.parametrize(
    ("message", "late"),
    [
        ("我下午4点付的款今天能发吗", True),
        ("16点付的款今天还能发吗", True),
        ("下晝四點俾錢今日會唔會寄出", True),
        ("16:30付的款今天能寄出吗", True),
        ("下午两点付款今天能发吗", False),  # before the cutoff: the rule answers it
        ("中午一点多付的款，今天能发出去吗", False),
        ("晚上8点拍明天能发不", False),  # not about today
        ("8点付的款今天能发吗", False),  # 8 in the morning or the evening: not read
        ("今天能发吗", False),
    ],
)
def test_a_payment_after_the_cutoff_asked_about_today_is_declined(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop, message: str, late: bool
) -> None:
    """The ship-time rule (15:00前付款当天发) reads as a yes to someone who paid at four: for a
    stated payment time after the shop's cutoff the answer is the decline, with its apology."""
    composer = ScriptComposer(style, default_rules())
    for sid in ("delivery_time.ship_when", "payment.paid_when_ship"):
        draft = composer.draft(ground(shop, (message, [cand(scripts[sid], 0.4)]), order=Order(status="paid")))
        assert ("今天不一定能发出" in draft.text) is late, draft.text
        assert draft.is_refusal is (True if late else None), draft.text
        if late:
            assert "非常抱歉" in draft.text and check(draft.text, rules=default_rules(), query=message).ok, draft.text


def test_a_stated_payment_time_is_read_only_when_it_is_clear() -> None:
    from agent.drafting.clock import hour_of, paid_at

    paying = re.compile("付|拍|俾")
    assert paid_at("我下午4点付的款", paying) == 16
    assert paid_at("下午3点半付款", paying) == 15.5
    assert paid_at("中午12点拍的", paying) == 12
    assert paid_at("上午十点付的款", paying) == 10
    assert paid_at("早上7點半俾錢", paying) == 7.5
    assert paid_at("8点付的款", paying) is None  # morning or evening
    assert paid_at("我刚付了 现在两点四十", paying) is None  # no paying word after the time
    assert paid_at("现在两点四十 我刚付了", paying) == 14 + 40 / 60
    assert hour_of("15:00") == 15 and hour_of("三点") is None


def test_an_order_under_the_gift_threshold_is_told_what_it_lacks(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop
) -> None:
    """满280送礼品 to an order of 158元: 再凑122元, and a gift asked for is then declined; an order
    over the threshold, or none, gets the script's own words."""
    composer = ScriptComposer(style, default_rules())
    ask = [cand(scripts["bargaining.ask_gift"], 0.4)]
    under = composer.draft(ground(shop, ("送个小东西呗", ask), order=Order(status="unpaid", amount=158)))
    assert "158元" in under.text and "122元" in under.text and under.is_refusal is True, under.text
    for order in (Order(status="unpaid", amount=300), None):
        plain = composer.draft(ground(shop, ("送个小东西呗", ask), order=order))
        assert "再凑" not in plain.text and plain.is_refusal is None, plain.text
    asked = [cand(scripts["promotion.gift"], 0.4)]
    told = composer.draft(ground(shop, ("有赠品吗", asked), order=Order(status="unpaid", amount=259)))
    assert "21元" in told.text and told.is_refusal is None, told.text


def test_faded_in_the_wash_answers_only_a_message_that_says_the_colour_ran(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop
) -> None:
    """才穿了一次就开先了 shares 穿了一次就 with the fading complaint's variants: without a word of
    colour running (掉色, 褪色, 染了) the quality-defect script answers it."""
    composer = ScriptComposer(style, default_rules())
    cands = [cand(scripts["fading.faded_after_wash"], 0.4), cand(scripts["damaged.quality_defect"], 0.3, rank=2)]
    seam = composer.draft(ground(shop, ("才穿了一次就开先了 袖子那里", cands)))
    assert seam.cited_ids == ["damaged.quality_defect"] and "褪色" not in seam.text, seam.text
    for said in ("洗了一次就掉色了", "把我白衣服全染了", "洗完褪色好严重"):
        assert composer.draft(ground(shop, (said, cands))).cited_ids == ["fading.faded_after_wash"], said


def test_the_flaw_procedure_answers_a_flaw_found_not_a_question_before_buying(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop
) -> None:
    """这个毛衣会起球吗 asks before buying: the quality answer, not 请把瑕疵处照片发我 (writer M, dev)."""
    composer = ScriptComposer(style, default_rules())
    cands = [cand(scripts["damaged.quality_defect"], 0.4), cand(scripts["quality.worried"], 0.35, rank=2)]
    for asked in ("这个毛衣会起球吗", "实物和图一样吗 会起球吗"):
        draft = composer.draft(ground(shop, (asked, cands)))
        assert draft.cited_ids == ["quality.worried"] and "照片" not in draft.text, (asked, draft.text)
    for said in ("穿了一次就起球了", "收到的衣服线头好多", "件衫有個窿"):
        assert composer.draft(ground(shop, (said, cands))).cited_ids == ["damaged.quality_defect"], said


@pytest.mark.parametrize(
    ("sid", "neutral", "plain", "said"),
    [
        # Why the remote areas pay more answers a customer who disputes the fee, not one who asks it.
        ("remote_area.why_extra_fee", "remote_area.remote_fee", "新僵要加钱吗", "凭什么西藏就要多收钱"),
        # Internal material is declined to a customer who asks for it, not to 要加多少钱.
        ("rule_breaking.internal_info", "shipping.sf_on_request", "要補多少錢", "这件衣服成本多少"),
        # Cut tags or worn clothes are declined to a customer who says so, not to 退货要留吊牌吗.
        ("returns.tags_removed", "returns.how_to_return", "退货要留吊牌吗", "吊牌剪了还能退吗"),
        # The regular-customer and round-down declines need a regular customer and a round-down asked.
        ("bargaining.regular_customer", "bargaining.ask_discount", "有优惠没", "老顾客有优惠吗"),
        ("bargaining.round_down", "bargaining.too_expensive", "还是有点贵", "抹个零吧"),
        # A refused refund and a double charge are answered when the customer says so, not to 我要退款.
        ("refund.refund_rejected", "refund.refund_progress", "我要退款 马上", "退款被驳回了"),
        ("refund.double_shipment", "refund.refund_progress", "订单号在上面 怎么处理", "重拍后两单都扣钱了"),
        ("complaint.bad_review_threat", "farewell.thanks_bye", "唔該晒！", "不解决我就给差评"),
    ],
)
def test_a_script_answers_only_the_message_that_asks_its_situation(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop, sid: str, neutral: str, plain: str, said: str
) -> None:
    composer = ScriptComposer(style, default_rules())
    cands = [cand(scripts[sid], 0.4), cand(scripts[neutral], 0.3, rank=2)]
    assert sid not in composer.draft(ground(shop, (plain, cands))).cited_ids
    assert composer.draft(ground(shop, (said, cands))).cited_ids == [sid]


def test_the_order_number_is_asked_for_once(style: ComposerStyle) -> None:
    """Two answers that each ask for the order number: the second loses the words that ask it
    again, or goes when asking it was all it said."""
    text = compose(
        ["亲，非常抱歉，请发订单号和破损照片，可补发、换货或退款。", "您好，请把情况和订单号告诉我，我认真处理。"],
        style,
    )
    assert text.count("订单号") == 1 and "请把情况告诉我" in text, text
    again = compose(["亲，请把订单号发我，我马上查看发货进度。", "好的亲，请发订单号，这就联系申通催件。"], style)
    assert again.count("订单号") == 1 and "这就联系申通催件" in again, again
    once = compose(["您好，请把情况和订单号告诉我，我认真处理。"], style)
    assert "订单号" in once  # asked once, it stays


def test_a_colour_question_asked_before_buying_sets_no_complaint_topic(
    style: ComposerStyle, scripts: dict[str, Script], shop: Shop
) -> None:
    """这件会掉色吗 then 那要怎么洗 asks how to wash, not how to complain about fading; after
    洗了就掉色了 the earlier turn does set the quality topic."""
    composer = ScriptComposer(style, default_rules())
    cands = [cand(scripts["fading.faded_after_wash"], 0.4), cand(scripts["fading.wash_care"], 0.3, rank=2)]
    asked = [Turn(role="customer", text="这件会掉色吗"), Turn(role="agent", text="亲，色牢度符合国标四级。")]
    assert composer.draft(ground(shop, ("那要怎么洗", cands), turns=asked)).cited_ids == ["fading.wash_care"]
    happened = [Turn(role="customer", text="洗了就掉色了"), Turn(role="agent", text="亲，非常抱歉。")]
    assert composer.draft(ground(shop, ("那怎么办", cands), turns=happened)).cited_ids == ["fading.faded_after_wash"]
