"""Chroma behind the :class:`~agent.retrieval.vectorstore.VectorStore` seam: the one module that imports it.

The collection lives in ``settings.index_dir`` (a persistent client) or on a Chroma server when
``settings.chroma_host`` is set; its name includes the embedder's name, so switching backends
builds a new collection instead of mixing spaces. Chroma persists the *config* of a collection's
embedding function and rebuilds it through its registry when the collection is reopened:
:class:`KefuEmbeddingFunction` is registered so a reopened collection embeds with the backend it
was built with, never with Chroma's default model (which downloads weights and fails offline).
API keys are never persisted. Every Chroma error becomes a :class:`RetrievalError` here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from agent.errors import RetrievalError
from agent.retrieval.embedder import Embedder, embedder_from_config
from agent.retrieval.vectorstore import Row, Rows

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from agent.config import Settings

SCHEME = "v2"  # bump when the documents of a script change shape: a new collection is built
T = TypeVar("T")


@register_embedding_function
class KefuEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma's handle on a kefu embedder; persisted as its config, rebuilt on reopen."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def __call__(self, input: Documents) -> Embeddings:
        return _as_embeddings(self.embedder.embed_documents(list(input)))

    def embed_query(self, input: Documents) -> Embeddings:
        return _as_embeddings(self.embedder.embed_queries(list(input)))

    @staticmethod
    def name() -> str:
        return "kefu"

    def get_config(self) -> dict[str, Any]:
        return self.embedder.config()

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> KefuEmbeddingFunction:
        return KefuEmbeddingFunction(embedder_from_config(config))

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine"]

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        if old_config.get("backend") != new_config.get("backend"):
            raise ValueError("a collection's embedding backend cannot change; build a new collection")


def _as_embeddings(vectors: Sequence[Sequence[float]]) -> Embeddings:
    return [np.asarray(v, dtype=np.float32) for v in vectors]


def collection_name(embedder: Embedder) -> str:
    """``kefu-<scheme>-<embedder>``, within Chroma's naming rules."""
    name = re.sub(r"[^a-zA-Z0-9._-]+", "-", f"kefu-{SCHEME}-{embedder.name}").strip("-._")
    return name[:200]


def chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False)


def _where(settings: Settings) -> str:
    return f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else str(settings.index_dir)


def open_client(settings: Settings) -> ClientAPI:
    """A Chroma server's client when ``chroma_host`` is set, else the local persistent store."""
    import chromadb

    try:
        if settings.chroma_host:
            return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings())
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.index_dir), settings=chroma_settings())
    except Exception as exc:
        raise RetrievalError(f"cannot open the Chroma index at {_where(settings)}: {exc}") from None


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except RetrievalError:
        raise
    except Exception as exc:
        raise RetrievalError(f"{what} failed: {exc}") from None


class ChromaStore:
    """A Chroma collection as a :class:`~agent.retrieval.vectorstore.VectorStore`."""

    def __init__(self, collection: Collection, ping: Callable[[], Any] | None = None) -> None:
        self.collection = collection
        self._ping = ping

    @property
    def name(self) -> str:
        return str(self.collection.name)

    def rows(self, with_vectors: bool = False) -> Rows:
        include: Any = ["metadatas", "embeddings"] if with_vectors else ["metadatas"]
        with _translated(f"reading the index {self.name}"):
            got = self.collection.get(include=include)
        metas = [{k: str(v) for k, v in (m or {}).items()} for m in got["metadatas"] or []]
        vectors = list(got["embeddings"]) if with_vectors and got["embeddings"] is not None else []
        return Rows(list(got["ids"]), metas, vectors)

    def add(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        with _translated(f"updating the index {self.name}"):
            self.collection.add(
                ids=[r.id for r in rows],
                documents=[r.text for r in rows],
                embeddings=np.asarray([r.vector for r in rows], dtype=np.float32),
                metadatas=[dict(r.meta) for r in rows],
            )

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        with _translated(f"updating the index {self.name}"):
            for start in range(0, len(ids), 1000):
                self.collection.delete(ids=ids[start : start + 1000])

    def ping(self) -> None:
        with _translated(f"the Chroma index {self.name} does not answer:"):
            if self._ping is not None:
                self._ping()


def open_store(settings: Settings, embedder: Embedder) -> ChromaStore:
    """The collection for ``embedder`` in the configured Chroma (created when missing)."""
    client = open_client(settings)
    name = collection_name(embedder)
    with _translated(f"opening the collection {name} at {_where(settings)}"):
        collection = client.get_or_create_collection(
            name,
            embedding_function=KefuEmbeddingFunction(embedder),  # type: ignore[arg-type]
            metadata={"scheme": SCHEME},
        )
    return ChromaStore(collection, client.heartbeat)


def drop_store(settings: Settings, embedder: Embedder) -> None:
    client = open_client(settings)
    name = collection_name(embedder)
    with _translated(f"dropping the collection {name}"):
        if any(c.name == name for c in client.list_collections()):
            client.delete_collection(name)


def ping(settings: Settings) -> None:
    """Raise RetrievalError unless the configured Chroma (a server when ``chroma_host`` is set) answers."""
    with _translated(f"the Chroma index at {_where(settings)} does not answer:"):
        open_client(settings).heartbeat()
