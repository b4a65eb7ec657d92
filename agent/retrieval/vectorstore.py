"""The vector store seam: rows of (id, text, vector, metadata) a dense index is built from.

    VectorStore.rows(with_vectors) / add(rows) / delete(ids) / ping()

:class:`~agent.retrieval.chroma.ChromaStore` keeps them in Chroma (a local persistent store or a
shared server); :class:`MemoryStore` is the fake beside it, for tests and benchmarks. kefu scores
exactly in memory (:class:`~agent.retrieval.index.DenseIndex`), so a store only stores.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from agent.errors import RetrievalError

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


class SnapshotStore:
    """A read-only copy of a store's rows in one ``.npz`` file, written after a sync.

    It lets a fresh process score a corpus version it has already indexed without opening Chroma
    (importing Chroma alone costs most of a second): the file is named by the corpus version and
    the embedder, so it only ever holds the rows of exactly that corpus.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"snapshot:{path.name}"

    @staticmethod
    def write(path: Path, rows: Rows) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        vectors = np.asarray(rows.vectors, dtype=np.float32).reshape(len(rows.ids), -1)
        np.savez(tmp, vectors=vectors, index=np.asarray(json.dumps({"ids": rows.ids, "metas": rows.metas})))
        os.replace(tmp, path)  # readers never see half a file

    def rows(self, with_vectors: bool = False) -> Rows:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                index = json.loads(str(data["index"]))
                vectors = list(data["vectors"]) if with_vectors else []
        except (OSError, ValueError, KeyError) as exc:
            raise RetrievalError(f"cannot read the index snapshot {self.path}: {exc}") from None
        return Rows(list(index["ids"]), list(index["metas"]), vectors)

    def add(self, rows: Sequence[Row]) -> None:
        raise RetrievalError(f"{self.name} is read-only")

    def delete(self, ids: Iterable[str]) -> None:
        raise RetrievalError(f"{self.name} is read-only")

    def ping(self) -> None:
        if not self.path.is_file():
            raise RetrievalError(f"the index snapshot {self.path} is gone")
