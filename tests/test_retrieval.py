"""Retrieval: the index follows the corpus, reopens offline, and finds the script a customer means."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import chromadb
import pytest
import yaml
from chromadb.api.client import SharedSystemClient
from threadpoolctl import ThreadpoolController

from agent.config import REPO_ROOT, Settings, get_settings
from agent.corpus import load_corpus
from agent.errors import RetrievalError
from agent.retrieval import FakeRetriever, HashEmbedder, Hit, OpenAIEmbedder, split_questions
from agent.retrieval.chroma import KefuEmbeddingFunction, chroma_settings, collection_name, open_client, open_store
from agent.retrieval.index import DenseIndex, _one_blas_thread, sync
from agent.retrieval.service import CENTROID_WEIGHT, get_retriever, retrieve_questions, update_index
from agent.retrieval.split import SplitRules
from agent.retrieval.vectorstore import MemoryStore
from agent.workspace import Workspace, WorkspaceHolder, load_workspace, validate_workspace
from tests.fakes.openai_server import FakeOpenAIServer

# A small corpus of five scripts: category -> script id -> (title, questions).
SCRIPTS_YAML = """
bargaining:
  bargaining.discount: [顾客要求便宜点, [能便宜点吗, 可以打折吗, 有优惠吗, 少点钱吧, 价格能商量吗, 最低多少钱]]
shipping:
  shipping.courier: [顾客问用什么快递, [发什么快递, 用哪家快递, 默认什么快递, 能发顺丰吗, 快递是哪家, 走什么物流]]
  shipping.when: [顾客问什么时候发货, [什么时候发货, 今天能发货吗, 多久发货, 下单后几天发,
                  现在拍什么时候发, 几点前下单当天发]]
returns:
  returns.no_reason: [顾客问能否七天无理由退货, [可以退货吗, 七天无理由吗, 不喜欢能退吗, 退货运费谁出,
                      能换货吗, 退换怎么弄]]
  returns.refund_time: [顾客问退款多久到账, [退款多久到账, 钱什么时候退回来, 退款怎么还没到, 几天能退款,
                        退款进度, 退的钱到哪了]]
"""


def write_corpus(root: Path) -> Path:
    """A corpus of the five scripts above beside the shipped shops, rules and retrieval files."""
    shutil.copytree(REPO_ROOT / "corpus", root, ignore=shutil.ignore_patterns("scripts"), dirs_exist_ok=True)
    (root / "scripts").mkdir(parents=True, exist_ok=True)
    for category, entries in yaml.safe_load(SCRIPTS_YAML).items():
        scripts = [
            {
                "id": sid,
                "title": title,
                "questions": questions,
                "reply": "亲，您好。",
                "source": {"seed": "t", "section": "t"},
            }
            for sid, (title, questions) in entries.items()
        ]
        body = {"category": category, "label": category, "scripts": scripts}
        (root / "scripts" / f"{category}.yaml").write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    return root


class CountingEmbedder(HashEmbedder):
    """The hashing fake, recording every document text it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return super().embed_documents(texts)


@pytest.fixture
def corpus_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_corpus(tmp_path / "corpus")
    monkeypatch.setenv("KEFU_CORPUS_DIR", str(root))
    get_settings.cache_clear()
    return root


def edit_script(corpus_dir: Path, category: str, script_id: str, **changes: object) -> None:
    path = corpus_dir / "scripts" / f"{category}.yaml"
    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    for script in body["scripts"]:
        if script["id"] == script_id:
            script.update(changes)
    path.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")


def drop_script(corpus_dir: Path, category: str, script_id: str) -> None:
    path = corpus_dir / "scripts" / f"{category}.yaml"
    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    body["scripts"] = [s for s in body["scripts"] if s["id"] != script_id]
    path.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")


def ws(settings: Settings | None = None) -> Workspace:
    """The configured workspace as it is on disk now."""
    return load_workspace(settings or get_settings())


def split_rules(settings: Settings | None = None) -> SplitRules:
    """The split rules of the configured (or given) workspace's snapshot."""
    return ws(settings).split


SHIPPED = Settings(corpus_dir=REPO_ROOT / "corpus")


def top(settings: Settings, query: str, embedder: HashEmbedder) -> str:
    hits = get_retriever(settings, ws(settings), embedder=embedder).retrieve(query, 3)
    assert hits, f"nothing retrieved for {query!r}"
    return hits[0].script_id


# --- the index follows the corpus --------------------------------------------------------


def test_only_changed_scripts_are_embedded_again_and_removed_ones_leave(corpus_dir: Path) -> None:
    settings = get_settings()
    embedder = CountingEmbedder()
    first = update_index(settings, ws(), embedder=embedder)
    assert (first.embedded, first.unchanged, first.removed) == (5, 0, 0)

    embedder.embedded.clear()
    again = update_index(settings, ws(), embedder=embedder)
    assert (again.embedded, again.unchanged, again.removed) == (0, 5, 0)
    assert embedder.embedded == []

    questions = ["什么时候发货", "今天能发货吗", "多久发货", "下单后几天发", "现在拍什么时候发", "付款后多久能寄出"]
    edit_script(corpus_dir, "shipping", "shipping.when", questions=questions)
    edited = update_index(settings, ws(), embedder=embedder)
    assert (edited.embedded, edited.unchanged, edited.removed) == (1, 4, 0)
    assert "付款后多久能寄出" in embedder.embedded
    assert "能便宜点吗" not in embedder.embedded

    drop_script(corpus_dir, "returns", "returns.refund_time")
    dropped = update_index(settings, ws(), embedder=embedder)
    assert (dropped.embedded, dropped.unchanged, dropped.removed) == (0, 4, 1)
    dense = get_retriever(settings, ws(), "dense", embedder=embedder)
    found = {h.script_id for h in dense.retrieve("退款多久到账", 10)}
    assert "returns.refund_time" not in found
    assert found


def test_an_edited_question_is_found_after_the_update(corpus_dir: Path) -> None:
    settings = get_settings()
    embedder = HashEmbedder()
    before = top(settings, "羽绒服怎么清洗", embedder)
    category, target = (
        ("returns", "returns.no_reason") if before != "returns.no_reason" else ("bargaining", "bargaining.discount")
    )
    script = next(s for s in load_corpus(corpus_dir).scripts if s.id == target)
    edit_script(corpus_dir, category, target, questions=[*script.questions[:-1], "羽绒服怎么清洗"])
    assert top(settings, "羽绒服怎么清洗", embedder) == target


def test_the_retriever_is_reused_until_the_corpus_changes(corpus_dir: Path) -> None:
    settings = get_settings()
    embedder = HashEmbedder()
    first = get_retriever(settings, ws(), embedder=embedder)
    assert get_retriever(settings, ws(), embedder=embedder) is first
    drop_script(corpus_dir, "returns", "returns.refund_time")
    after = get_retriever(settings, ws(), embedder=embedder)
    assert after is not first
    assert "returns.refund_time" not in {h.script_id for h in after.retrieve("退款多久到账", 5)}


def test_concurrent_first_searches_agree_with_a_serial_one(corpus_dir: Path) -> None:
    settings = get_settings()
    embedder = HashEmbedder()
    warm = get_retriever(settings, ws(), embedder=embedder)
    queries = ["能便宜点吗", "用哪家快递", "退款多久到账", "可以退货吗"] * 4
    serial = [warm.dense.search([q], 5) for q in queries]  # type: ignore[union-attr]
    for _ in range(5):
        cold = DenseIndex(open_store(settings, embedder), embedder, CENTROID_WEIGHT)
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(cold.search, [[q] for q in queries], [5] * len(queries))) == serial


def test_dense_scoring_uses_one_blas_thread_and_leaves_the_process_setting_alone(corpus_dir: Path) -> None:
    controller = ThreadpoolController()
    before = [lib["num_threads"] for lib in controller.select(user_api="blas").info()]
    with _one_blas_thread():
        assert all(lib["num_threads"] == 1 for lib in ThreadpoolController().select(user_api="blas").info())
    retriever = get_retriever(get_settings(), ws(), embedder=HashEmbedder())
    assert retriever.retrieve("能便宜点吗", 3)
    with ThreadPoolExecutor(8) as pool:  # concurrent searches too: each restores what it found
        assert all(pool.map(lambda q: retriever.retrieve(q, 3), ["能便宜点吗", "用哪家快递", "退款多久到账"] * 60))
    assert [lib["num_threads"] for lib in ThreadpoolController().select(user_api="blas").info()] == before


def test_rebuild_embeds_everything_again(corpus_dir: Path) -> None:
    settings = get_settings()
    embedder = HashEmbedder()
    update_index(settings, ws(), embedder=embedder)
    rebuilt = update_index(settings, ws(), rebuild=True, embedder=embedder)
    assert (rebuilt.embedded, rebuilt.unchanged, rebuilt.removed) == (5, 0, 0)


def test_each_embedder_has_its_own_collection(corpus_dir: Path) -> None:
    settings = get_settings()
    small, large = HashEmbedder(dim=64), HashEmbedder(dim=128)
    assert collection_name(small) != collection_name(large)
    update_index(settings, ws(), embedder=small)
    other = update_index(settings, ws(), embedder=large)
    assert other.embedded == 5, "vectors of another space must not be reused"


def test_a_reopened_collection_embeds_with_its_registered_function_offline(corpus_dir: Path) -> None:
    settings = get_settings()
    embedder = HashEmbedder(dim=96)
    update_index(settings, ws(), embedder=embedder)
    SharedSystemClient.clear_system_cache()  # as a new process would

    client = chromadb.PersistentClient(path=str(settings.index_dir), settings=chroma_settings())
    reopened = client.get_collection(collection_name(embedder))  # no embedding function passed
    res = reopened.query(query_texts=["用哪家快递"], n_results=1, where={"kind": "text"})
    assert res["metadatas"] is not None
    assert res["metadatas"][0][0]["script_id"] == "shipping.courier"
    config = reopened.configuration_json["embedding_function"]
    assert config["name"] == KefuEmbeddingFunction.name()
    assert config["config"] == {"backend": "hash", "dim": 96}


def test_the_openai_embedder_persists_no_api_key() -> None:
    function = KefuEmbeddingFunction(OpenAIEmbedder("text-embedding-3-small", "http://127.0.0.1:9/v1", "sk-secret"))
    assert "sk-secret" not in str(function.get_config())
    rebuilt = KefuEmbeddingFunction.build_from_config(function.get_config())
    assert rebuilt.get_config() == function.get_config()


def test_the_openai_embedder_talks_to_a_compatible_endpoint(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeOpenAIServer().start()
    try:
        monkeypatch.setenv("KEFU_EMBEDDING_BACKEND", "openai")
        monkeypatch.setenv("KEFU_EMBEDDING_BASE_URL", server.base_url)
        monkeypatch.setenv("KEFU_EMBEDDING_API_KEY", "test-key")
        monkeypatch.setenv("KEFU_EMBEDDING_MODEL", "fake-embed")
        get_settings.cache_clear()
        report = update_index(get_settings(), ws())
        assert report.embedded == 5
        assert {r.body["model"] for r in server.embedding_requests} == {"fake-embed"}
        assert get_retriever(get_settings(), ws()).retrieve("用哪家快递", 3)
    finally:
        server.stop()


def test_an_unreachable_embedding_endpoint_is_a_retrieval_error() -> None:
    embedder = OpenAIEmbedder("fake-embed", "http://127.0.0.1:9/v1", "test-key")
    embedder.chunk = 1
    with pytest.raises(RetrievalError, match="fake-embed"):
        embedder.embed_documents(["能便宜点吗"])


def test_an_unreachable_chroma_server_is_a_retrieval_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("KEFU_CHROMA_PORT", "9")
    get_settings.cache_clear()
    with pytest.raises(RetrievalError, match=r"127\.0\.0\.1:9"):
        open_client(get_settings())


# --- queries ---------------------------------------------------------------------------


def test_traditional_and_full_width_queries_find_the_simplified_script(corpus_dir: Path) -> None:
    settings = get_settings()
    embedder = HashEmbedder()
    for mode in ("dense", "bm25", "hybrid"):
        retriever = get_retriever(settings, ws(), mode, embedder=embedder)  # type: ignore[arg-type]
        simplified = [h.script_id for h in retriever.retrieve("退款多久到账", 3)]
        traditional = [h.script_id for h in retriever.retrieve("退款多久到賬？", 3)]
        assert simplified[0] == "returns.refund_time", mode
        assert traditional == simplified, mode
        assert [h.script_id for h in retriever.retrieve("可以退貨嗎\u200b", 1)] == ["returns.no_reason"], mode


def test_hits_carry_each_source_rank(corpus_dir: Path) -> None:
    hits = get_retriever(get_settings(), ws(), embedder=HashEmbedder()).retrieve("能便宜点吗", 3)
    assert hits[0] == Hit("bargaining.discount", "bargaining", hits[0].score, dense_rank=1, bm25_rank=1)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(hits) == 3


def test_an_empty_query_finds_nothing(corpus_dir: Path) -> None:
    retriever = get_retriever(get_settings(), ws(), embedder=HashEmbedder())
    assert retriever.retrieve("  \u200b ", 3) == []
    assert retriever.retrieve("能便宜点吗", 0) == []


def test_each_question_of_a_message_is_retrieved_on_its_own(corpus_dir: Path) -> None:
    settings = get_settings()
    retriever = get_retriever(settings, ws(), embedder=HashEmbedder())
    answers = retrieve_questions("亲，能便宜点吗？另外用哪家快递\n退款多久到账", ws(), 3, retriever)
    assert [q for q, _ in answers] == ["亲，能便宜点吗？", "另外用哪家快递", "退款多久到账"]
    assert [hits[0].script_id for _, hits in answers] == [
        "bargaining.discount",
        "shipping.courier",
        "returns.refund_time",
    ]
    assert retriever.retrieve_questions("能便宜点吗", 3)[0][1][0].script_id == "bargaining.discount"


# --- splitting ---------------------------------------------------------------------------

SPLITS = [
    (
        "亲，这件衣服能便宜点吗？今天下单什么时候发货，用什么快递？",
        ["亲，这件衣服能便宜点吗？", "今天下单什么时候发货", "用什么快递？"],
    ),
    ("運費多少，什麼時候能發", ["運費多少", "什麼時候能發"]),
    # Customers type a space where a question ends; Latin letters and digits keep theirs.
    ("EMS多少 新疆到不到 要几天", ["EMS多少", "新疆到不到", "要几天"]),
    ("20件有批发价没 能开发票吗", ["20件有批发价没", "能开发票吗"]),
    ("165 110斤 平时穿M", ["165 110斤", "平时穿M"]),
    # A comma between two questions ends the first; a request before a question does not.
    ("顺丰多少钱，今天能发吗", ["顺丰多少钱", "今天能发吗"]),
    ("我想指定顺丰寄过来，需要额外付多少？", ["我想指定顺丰寄过来，需要额外付多少？"]),
    ("请问什么时候发货，我这边急用", ["请问什么时候发货，我这边急用"]),
    ("我在成都，用什么快递", ["我在成都，用什么快递"]),
    ("能便宜点吗，顺便问下用什么快递", ["能便宜点吗", "顺便问下用什么快递"]),
    ("什么时候发货？还有，运费险有吗", ["什么时候发货？", "还有，运费险有吗"]),
    ("L码的蓝色还有货吗", ["L码的蓝色还有货吗"]),
    # A greeting the message opens with is a piece of its own (answered 在的！ beside the rest) ...
    ("在吗？能便宜点吗", ["在吗？", "能便宜点吗"]),
    ("在吗这个码偏大偏小 我160 100斤", ["在吗", "这个码偏大偏小", "我160 100斤"]),
    ("老板在吗，包邮吗", ["老板在吗", "包邮吗"]),
    ("在吗😊 江浙沪包邮吗", ["在吗😊", "江浙沪包邮吗"]),  # an emoji after the greeting (writer M)
    # ... but 在 beginning a question, and 你好 before one, stay with it.
    ("在这个店买的衣服坏了", ["在这个店买的衣服坏了"]),
    ("现在能发货吗", ["现在能发货吗"]),
    ("你好，发什么快递", ["你好，发什么快递"]),
    # A question ends at 吗 with no mark after it ...
    ("洗了掉色吗图片是实拍吗", ["洗了掉色吗", "图片是实拍吗"]),
    ("寄乌鲁木齐要加钱吗大概几天到", ["寄乌鲁木齐要加钱吗", "大概几天到"]),
    # ... unless what follows is too short to ask anything, and never at the 么 of 什么.
    ("可以吗亲", ["可以吗亲"]),
    ("为什么这么贵", ["为什么这么贵"]),
    # A second question typed straight after a first that already asks starts at its first word ...
    ("顺丰多少钱今天能发吗", ["顺丰多少钱", "今天能发吗"]),
    # 谁, 啥 and 咋 ask as much as 什么 and 怎么: a comma after one ends a question.
    ("退货运费谁出，多久能退款", ["退货运费谁出", "多久能退款"]),
    ("发啥快递，几天能到", ["发啥快递", "几天能到"]),
    # 怎么弄 alone asks how to go about what came before: read with it, as one question.
    ("我想让我老公帮我付钱 怎么弄", ["我想让我老公帮我付钱怎么弄"]),
    ("衣服破了个洞 咋办？", ["衣服破了个洞咋办？"]),
    ("满减怎么算有没有小礼物", ["满减怎么算", "有没有小礼物"]),
    # ... only when both sides ask.
    ("今天能发吗", ["今天能发吗"]),
    ("我今天能收到吗", ["我今天能收到吗"]),
    ("這件能便宜點嗎？另外，運費誰出\n\n七天無理由退貨嗎", ["這件能便宜點嗎？", "另外，運費誰出", "七天無理由退貨嗎"]),
    ("能便宜点吗？？？快递呢！！", ["能便宜点吗？？？", "快递呢！！"]),
    ("。。。", []),
    ("", []),
    ("亲", ["亲"]),
]


@pytest.mark.parametrize(("message", "questions"), SPLITS)
def test_a_message_is_split_into_its_questions(message: str, questions: list[str]) -> None:
    assert split_questions(message, split_rules()) == questions


@pytest.mark.parametrize(
    ("piece", "asks", "context"),
    [
        ("我在成都", False, True),
        ("寄到杭州", False, True),
        ("說實話", False, True),
        ("库存够不够", True, False),
        ("运费谁出", True, False),
        ("帮我改个地址", True, False),
        ("有货吗", True, False),
        ("打开包裹发现外套袖口那里撕开了一道口子", False, False),  # too long to pass as context
    ],
)
def test_a_piece_that_asks_nothing_and_is_short_is_context(piece: str, asks: bool, context: bool) -> None:
    rules = split_rules()
    assert (rules.asks(piece), rules.is_context(piece)) == (asks, context)


def test_a_message_of_many_questions_is_cut_into_at_most_max_questions() -> None:
    rules = split_rules()
    message = "能便宜点吗，" * 1300
    questions = split_questions(message, rules)
    assert len(questions) == rules.max_questions
    assert questions[:-1] == ["能便宜点吗"] * (rules.max_questions - 1)
    assert "".join(questions).count("能便宜点吗") == 1300  # nothing of the message is lost


def test_a_workspace_without_split_rules_names_the_missing_file(corpus_dir: Path) -> None:
    """A workspace is whole: split rules are one of its files, never borrowed from the repository."""
    (corpus_dir / "retrieval" / "split.yaml").unlink()
    workspace, problems = validate_workspace(get_settings())
    assert workspace is None
    assert any("split.yaml" in p and "missing" in p for p in problems), problems


def test_the_copied_split_rules_equal_the_shipped_ones(corpus_dir: Path) -> None:
    assert split_rules() == split_rules(SHIPPED)


def test_split_rules_are_read_from_the_corpus(corpus_dir: Path) -> None:
    rules = corpus_dir / "retrieval" / "split.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("  - 另外\n", ""), encoding="utf-8")
    message = "几点前发货，另外送运费险"
    assert split_questions(message, split_rules(SHIPPED)) == [
        "几点前发货",
        "另外送运费险",
    ]
    assert split_questions(message, split_rules()) == [message]


def test_an_edit_to_the_split_rules_applies_without_a_restart(corpus_dir: Path) -> None:
    holder = WorkspaceHolder(get_settings(), interval_s=0)
    rules = corpus_dir / "retrieval" / "split.yaml"
    message = "运费多少，什么时候能发"
    assert split_questions(message, holder.current().split) == ["运费多少", "什么时候能发"]
    rules.write_text(rules.read_text(encoding="utf-8").replace("  - 什么\n", ""), encoding="utf-8")
    assert holder.refresh()
    assert split_questions(message, holder.current().split) == [message]


# --- the fake --------------------------------------------------------------------------


def test_the_fake_retriever_answers_its_script_then_fails_naming_the_call() -> None:
    hit = Hit("bargaining.discount", "bargaining", 1.0)
    fake = FakeRetriever([[hit, hit], []])
    assert fake.retrieve("能便宜点吗", 1) == [hit]
    assert fake.retrieve_questions("快递呢", 3) == [("快递呢", [])]
    with pytest.raises(AssertionError, match=r"call #3 retrieve\('还有吗', k=3\)"):
        fake.retrieve("还有吗", 3)
    assert fake.calls == [("能便宜点吗", 1), ("快递呢", 3), ("还有吗", 3)]


def test_collections_are_opened_with_the_kefu_embedding_function(tmp_path: Path) -> None:
    store = open_store(Settings(chroma_path=tmp_path / "c"), HashEmbedder())
    assert store.collection.configuration_json["embedding_function"]["name"] == "kefu"
    client = chromadb.PersistentClient(path=str(tmp_path / "c"), settings=chroma_settings())
    assert [c.name for c in client.list_collections()] == [store.name]


# --- the vector store seam ---------------------------------------------------------------


def test_the_memory_store_ranks_like_chroma(corpus_dir: Path) -> None:
    """The in-memory fake and Chroma hold the same rows, so the dense index scores them the same."""
    settings = get_settings()
    embedder = HashEmbedder()
    scripts = ws().corpus.scripts
    memory = MemoryStore()
    report = sync(memory, scripts, embedder)
    assert (report.embedded, report.unchanged, report.removed) == (5, 0, 0)
    assert memory.adds == report.documents
    assert sync(memory, scripts, embedder).embedded == 0  # nothing changed: nothing re-embedded
    chroma = open_store(settings, embedder)
    sync(chroma, scripts, embedder)
    assert sorted(memory.rows().ids) == sorted(chroma.rows().ids)
    queries = ["能便宜点吗", "用哪家快递", "退款多久到账", "可以退货吗"]
    in_memory = DenseIndex(memory, embedder, CENTROID_WEIGHT).search(queries, 5)
    in_chroma = DenseIndex(chroma, embedder, CENTROID_WEIGHT).search(queries, 5)
    assert [[s.script_id for s in q] for q in in_memory] == [[s.script_id for s in q] for q in in_chroma]
    assert [q[0].script_id for q in in_memory] == [
        "bargaining.discount",
        "shipping.courier",
        "returns.refund_time",
        "returns.no_reason",
    ]


def test_sync_drops_the_rows_of_a_removed_script_from_the_store(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    scripts = load_corpus(write_corpus(tmp_path / "corpus")).scripts
    memory = MemoryStore()
    sync(memory, scripts, embedder)
    gone = scripts[0].id
    report = sync(memory, scripts[1:], embedder)
    assert (report.embedded, report.removed) == (0, 1)
    assert not [i for i in memory.rows().ids if i.startswith(gone + "#")]
