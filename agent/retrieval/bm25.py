"""Lexical search: BM25 (bm25s) over the words and characters of the matching form.

A script is one document (title and every question variant). Tokens are jieba's
``lcut_for_search`` words plus the single characters: customers write 打折 where a script
says 折扣, and the shared 折 is what BM25 can see (on held-out questions this lifted BM25's
hit@3 from about 0.70 to 0.79; ``bench/bench_retrieval.py --schemes``).

Words to ignore and trade terms jieba should keep whole are data files in
``corpus/retrieval/`` (``stopwords.txt``, ``userdict.txt``). One index is built per corpus
version and kept in memory (:func:`bm25_for`).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.retrieval.index import Doc, Scored
from agent.text import normalize_query
from agent.types import Script

if TYPE_CHECKING:
    import jieba

_WORD = re.compile(r"\w", re.UNICODE)


def _word_list(path: Path) -> list[str]:
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@lru_cache(maxsize=4)
def _jieba(userdict: Path) -> jieba.Tokenizer:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    for word in _word_list(userdict):
        tokenizer.add_word(word)
    return tokenizer


_CJK_CHAR = re.compile(r"[\u3400-\u9fff]")


@lru_cache(maxsize=65536)
def _syllable(ch: str) -> str:
    from pypinyin import Style, lazy_pinyin

    return lazy_pinyin(ch, style=Style.NORMAL)[0]


def pinyin_bigrams(form: str) -> list[str]:
    """Toneless pinyin of each pair of adjacent CJK characters: 包由 and 包邮 both give py:bao_you."""
    out: list[str] = []
    run: list[str] = []
    for ch in [*form, " "]:
        if _CJK_CHAR.match(ch):
            run.append(_syllable(ch))
            continue
        out.extend(f"py:{a}_{b}" for a, b in pairwise(run))
        run = []
    return out


def _has_pinyin() -> bool:
    try:
        import pypinyin  # noqa: F401
    except ImportError:
        return False
    return True


class Tokenizer:
    """jieba search-mode words, single characters and pinyin bigrams of the matching form, no stopwords.

    Pinyin bigrams make a homophone typo (包由, 尺马, 优会券) share tokens with the word meant
    (包邮, 尺码, 优惠券); without pypinyin installed, characters and words only.
    """

    def __init__(self, data_dir: Path, chars: bool = True, pinyin: bool | None = None) -> None:
        self.data_dir = data_dir
        self.chars = chars
        self.pinyin = _has_pinyin() if pinyin is None else pinyin
        self._stop: frozenset[str] | None = None

    def __call__(self, text: str) -> list[str]:
        if self._stop is None:
            self._stop = frozenset(_word_list(self.data_dir / "stopwords.txt"))
        form = normalize_query(text)
        words = _jieba(self.data_dir / "userdict.txt").lcut_for_search(form)
        if self.chars:
            words += [ch for ch in form if len(ch) == 1 and _WORD.match(ch) and not ch.isascii()]
        words = [w for w in words if w not in self._stop and _WORD.search(w)]
        if self.pinyin:
            words += pinyin_bigrams(form)
        return words


def script_document(script: Script) -> Doc:
    return Doc(script.id, "\n".join([script.title, *script.questions]), script.id, script.category)


class BM25Index:
    """BM25 over a script's documents; a script scores by its best document."""

    def __init__(self, docs: Sequence[Doc], tokenize: Tokenizer) -> None:
        self.docs = list(docs)
        self.tokenize = tokenize
        self._bm25: Any = None

    def build(self) -> BM25Index:
        import bm25s

        bm25 = bm25s.BM25()
        bm25.index([self.tokenize(d.text) or ["\x00"] for d in self.docs], show_progress=False)
        self._bm25 = bm25
        return self

    def search(self, query: str, depth: int) -> list[Scored]:
        if self._bm25 is None:
            self.build()
        words = [w for w in self.tokenize(query) if w in self._bm25.vocab_dict]
        if not words or not self.docs:
            return []
        scores = self._bm25.get_scores(words)
        best: dict[str, Scored] = {}
        for i in scores.argsort()[::-1]:
            score = float(scores[i])
            if score <= 0.0 or len(best) >= depth:
                break
            doc = self.docs[int(i)]
            if doc.script_id not in best:
                best[doc.script_id] = Scored(doc.script_id, doc.category, score)
        return list(best.values())


_CACHE: OrderedDict[tuple[str, Path], BM25Index] = OrderedDict()
_CACHE_SIZE = 8


def bm25_for(version: str, scripts: Sequence[Script], data_dir: Path) -> BM25Index:
    """The BM25 index of a corpus version (``version`` names ``scripts``), built once and reused."""
    key = (version, data_dir)
    index = _CACHE.get(key)
    if index is None:
        index = _CACHE[key] = BM25Index([script_document(s) for s in scripts], Tokenizer(data_dir)).build()
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return index
