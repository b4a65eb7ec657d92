"""Homophone-aware BM25: pinyin bigrams beside characters find the script a typo meant."""

from __future__ import annotations

import json

from agent.config import REPO_ROOT
from agent.retrieval.bm25 import BM25Index, Tokenizer, pinyin_bigrams, script_document
from agent.workspace import load_workspace

TYPOS = [json.loads(line) for line in (REPO_ROOT / "tests" / "data" / "typo_variants.jsonl").open(encoding="utf-8")]


def test_a_homophone_shares_pinyin_bigrams_with_the_word_meant() -> None:
    assert pinyin_bigrams("包由") == pinyin_bigrams("包邮") == ["py:bao_you"]
    assert set(pinyin_bigrams("优会券")) == set(pinyin_bigrams("优惠券"))
    assert pinyin_bigrams("ems 20元") == []


def _hits(pinyin: bool) -> int:
    workspace = load_workspace(REPO_ROOT)
    docs = [script_document(s) for s in workspace.corpus.scripts]
    index = BM25Index(docs, Tokenizer(workspace.retrieval_dir, pinyin=pinyin)).build()
    return sum([h.script_id for h in index.search(t["query"], 3)][:1] == [t["script"]] for t in TYPOS)


def test_pinyin_lifts_bm25_on_typo_variants() -> None:
    plain, with_pinyin = _hits(False), _hits(True)
    assert with_pinyin > plain
    assert with_pinyin / len(TYPOS) >= 0.9
