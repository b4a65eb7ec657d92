"""Homophone typos of trade terms corrected before retrieval: 新僵 -> 新疆, 发漂 -> 发票, 身通 -> 申通.

Customers type on pinyin keyboards, so a wrong character usually sounds like the right one. The
trade terms jieba keeps whole (``corpus/retrieval/userdict.txt``: 包邮, 发票, 申通, 新疆 …) are
indexed by their toneless pinyin. A window of the query that is no dictionary word, sounds like
exactly one term and shares a character with it is replaced by the term, longest window first,
unless the window cuts through a word of the query itself (便宜点 holds 宜点 inside 便宜). Real
words are left as the customer wrote them (那个, 寄件, 两点): a corrector that rewrote them would
make retrieval worse on clean messages. Both retrievers search the corrected query; BM25 keeps
its pinyin bigrams beside it for typos of other words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

from agent.retrieval.bm25 import _jieba, _syllable, _word_list

_CJK = re.compile(r"[\u3400-\u9fff]+")
_LONGEST = 4


def _typed(window: str) -> tuple[str, ...]:
    """How a window of the query sounds: each character's own reading (the customer picked it by it)."""
    return tuple(_syllable(ch) for ch in window)


def _sound(term: str) -> tuple[str, ...]:
    """How a term sounds in context (西藏 reads xi zang, not xi cang)."""
    from pypinyin import Style, lazy_pinyin

    return tuple(lazy_pinyin(term, style=Style.NORMAL))


class Corrector:
    """Replaces homophone typos of ``terms`` in a normalised query (see the module docstring)."""

    def __init__(
        self,
        terms: Iterable[str],
        cut: Callable[[str], list[str]] | None = None,
        dictionary: Callable[[str], bool] | None = None,
    ) -> None:
        self.cut = cut
        self.dictionary = dictionary or (lambda _: False)
        by_sound: dict[tuple[str, ...], set[str]] = {}
        for term in terms:
            if 2 <= len(term) <= _LONGEST and _CJK.fullmatch(term):
                by_sound.setdefault(_sound(term), set()).add(term)
        self.terms = frozenset(t for same in by_sound.values() for t in same)
        self.meaning = {key: next(iter(same)) for key, same in by_sound.items() if len(same) == 1}

    def _replacement(self, window: str) -> str | None:
        if window in self.terms or self.dictionary(window):
            return None
        term = self.meaning.get(_typed(window))
        return term if term is not None and set(term) & set(window) else None

    def __call__(self, text: str) -> str:
        if not self.meaning:
            return text
        out: list[str] = []
        last = 0
        for run in _CJK.finditer(text):
            out.append(text[last : run.start()])
            out.append(self._run(run.group()))
            last = run.end()
        out.append(text[last:])
        return "".join(out)

    def _inside(self, run: str) -> set[int]:
        """Positions inside a word of the customer's text, where no window may start or end."""
        if self.cut is None:
            return set()
        inside: set[int] = set()
        at = 0
        for token in self.cut(run):
            inside.update(range(at + 1, at + len(token)))
            at += len(token)
        return inside

    def _run(self, run: str) -> str:
        out, i = [], 0
        inside = self._inside(run)
        while i < len(run):
            for n in range(min(_LONGEST, len(run) - i), 1, -1):
                if i in inside or i + n in inside:
                    continue
                term = self._replacement(run[i : i + n])
                if term is not None:
                    out.append(term)
                    i += n
                    break
            else:
                out.append(run[i])
                i += 1
        return "".join(out)


def corrector_for(retrieval_dir: Path) -> Corrector:
    """The corrector of a workspace's trade terms (``userdict.txt``), jieba's dictionary beside it."""
    userdict = retrieval_dir / "userdict.txt"
    terms = tuple(_word_list(userdict))
    return _corrector(userdict, terms)


@lru_cache(maxsize=8)
def _corrector(userdict: Path, terms: tuple[str, ...]) -> Corrector:  # one per edit of the terms
    tokenizer = _jieba(userdict)

    def known(word: str) -> bool:
        return bool(tokenizer.FREQ.get(word))

    return Corrector(terms, lambda text: tokenizer.lcut(text, HMM=False), known)
