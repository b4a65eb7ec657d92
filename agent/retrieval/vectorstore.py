"""The vector store seam: rows of (id, text, vector, metadata) a dense index is built from.

    VectorStore.rows(with_vectors) / add(rows) / delete(ids) / ping()

:class:`~agent.retrieval.chroma.ChromaStore` keeps them in Chroma (a local persistent store or a
shared server); :class:`MemoryStore` is the fake beside it, for tests and benchmarks. kefu scores
exactly in memory (:class:`~agent.retrieval.index.DenseIndex`), so a store only stores.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

Meta = dict[str, str]


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    text: str
    vector: Sequence[float]
    meta: Meta


@dataclass(frozen=True, slots=True)
class Rows:
    """What a store holds, column-wise; ``vectors`` empty unless asked for."""

    ids: list[str]
    metas: list[Meta]
    vectors: list[Sequence[float]] = field(default_factory=list)


class VectorStore(Protocol):
    @property
    def name(self) -> str: ...

    def rows(self, with_vectors: bool = False) -> Rows: ...

    def add(self, rows: Sequence[Row]) -> None: ...

    def delete(self, ids: Iterable[str]) -> None: ...

    def ping(self) -> None:
        """Raise RetrievalError unless the store answers."""
        ...


class MemoryStore:
    """The in-process fake: a dict of rows, insertion-ordered."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self._rows: dict[str, Row] = {}
        self._lock = threading.Lock()
        self.adds = 0

    def rows(self, with_vectors: bool = False) -> Rows:
        with self._lock:
            held = list(self._rows.values())
        return Rows(
            [r.id for r in held], [dict(r.meta) for r in held], [r.vector for r in held] if with_vectors else []
        )

    def add(self, rows: Sequence[Row]) -> None:
        with self._lock:
            self.adds += len(rows)
            for row in rows:
                self._rows[row.id] = row

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock:
            for i in ids:
                self._rows.pop(i, None)

    def ping(self) -> None:
        return None
