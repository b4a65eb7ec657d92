"""The dense index: scripts in a Chroma collection, kept in step with the corpus.

Each script becomes one document per question variant (plus one for its title), with the
script id, category and :func:`agent.corpus.content_hash` in the metadata; a script scores
by its best document. This scheme won on held-out questions against one document per script
(see ``bench/bench_retrieval.py``). :func:`sync` re-embeds only scripts whose hash changed
and deletes scripts that left the corpus.

The collection lives in ``settings.index_dir`` (a persistent client) or on a Chroma server
when ``settings.chroma_host`` is set. Its name includes the embedder's name, so switching
backends builds a new collection instead of mixing vector spaces.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from agent.corpus import content_hash
from agent.errors import RetrievalError
from agent.retrieval.embedder import Embedder, KefuEmbeddingFunction
from agent.types import Script

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from agent.config import Settings

Scheme = Literal["variants", "variants+title", "script"]
DEFAULT_SCHEME: Scheme = "variants+title"
Progress = Callable[[int, int], None]
_BATCH = 64


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


def documents(script: Script, scheme: Scheme = DEFAULT_SCHEME) -> list[Doc]:
    """The texts a script is found by, under a document scheme."""
    if scheme == "script":
        text = "\n".join([script.title, *script.questions])
        return [Doc(f"{script.id}#all", text, script.id, script.category)]
    docs = [Doc(f"{script.id}#q{i}", q, script.id, script.category) for i, q in enumerate(script.questions)]
    if scheme == "variants+title":
        docs.append(Doc(f"{script.id}#title", script.title, script.id, script.category))
    return docs


def collection_name(embedder: Embedder, scheme: Scheme = DEFAULT_SCHEME) -> str:
    """``kefu-<scheme>-<embedder>``, within Chroma's naming rules."""
    raw = f"kefu-{scheme.replace('+', '-')}-{embedder.name}"
    name = re.sub(r"[^a-zA-Z0-9._-]+", "-", raw).strip("-._")
    return name[:200]


# --- clients and collections -------------------------------------------------------------


def chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False)


def open_client(settings: Settings) -> ClientAPI:
    """A Chroma server's client when ``chroma_host`` is set, else the local persistent store."""
    import chromadb

    try:
        if settings.chroma_host:
            return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings())
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.index_dir), settings=chroma_settings())
    except Exception as exc:
        where = f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else str(settings.index_dir)
        raise RetrievalError(f"cannot open the Chroma index at {where}: {exc}") from None


def open_collection(client: ClientAPI, embedder: Embedder, scheme: Scheme = DEFAULT_SCHEME) -> Collection:
    return client.get_or_create_collection(
        collection_name(embedder, scheme),
        embedding_function=KefuEmbeddingFunction(embedder),  # type: ignore[arg-type]
        metadata={"scheme": scheme},
    )


def drop_collection(client: ClientAPI, embedder: Embedder, scheme: Scheme = DEFAULT_SCHEME) -> None:
    name = collection_name(embedder, scheme)
    if any(c.name == name for c in client.list_collections()):
        client.delete_collection(name)


# --- incremental sync ------------------------------------------------------------------


def _indexed(collection: Collection) -> dict[str, tuple[str, list[str]]]:
    """script id -> (stored content hash, its document ids)."""
    got = collection.get(include=["metadatas"])
    out: dict[str, tuple[str, list[str]]] = {}
    for doc_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
        script_id = str(meta["script_id"])
        stored_hash, ids = out.setdefault(script_id, (str(meta.get("hash", "")), []))
        ids.append(doc_id)
        if str(meta.get("hash", "")) != stored_hash:
            out[script_id] = ("", ids)
    return out


def _stale(script: Script, indexed: tuple[str, list[str]] | None, scheme: Scheme) -> bool:
    if indexed is None:
        return True
    stored_hash, ids = indexed
    return stored_hash != content_hash(script) or len(ids) != len(documents(script, scheme))


def _add(collection: Collection, scripts: Sequence[Script], scheme: Scheme, progress: Progress | None) -> int:
    docs = [(doc, content_hash(s)) for s in scripts for doc in documents(s, scheme)]
    for start in range(0, len(docs), _BATCH):
        batch = docs[start : start + _BATCH]
        collection.add(
            ids=[d.id for d, _ in batch],
            documents=[d.text for d, _ in batch],
            metadatas=[{"script_id": d.script_id, "category": d.category, "hash": h} for d, h in batch],
        )
        if progress is not None:
            progress(min(start + _BATCH, len(docs)), len(docs))
    return len(docs)


def _delete(collection: Collection, ids: Iterable[str]) -> None:
    ids = list(ids)
    for start in range(0, len(ids), 1000):
        collection.delete(ids=ids[start : start + 1000])


def sync(
    collection: Collection,
    scripts: Sequence[Script],
    scheme: Scheme = DEFAULT_SCHEME,
    progress: Progress | None = None,
) -> SyncReport:
    """Bring the collection in step with ``scripts``: embed new and changed ones, drop the gone."""
    started = time.perf_counter()
    try:
        indexed = _indexed(collection)
        stale = [s for s in scripts if _stale(s, indexed.get(s.id), scheme)]
        wanted = {s.id for s in scripts}
        removed = [sid for sid in indexed if sid not in wanted]
        _delete(collection, [i for s in stale if s.id in indexed for i in indexed[s.id][1]])
        _delete(collection, [i for sid in removed for i in indexed[sid][1]])
        added = _add(collection, stale, scheme, progress)
    except RetrievalError:
        raise
    except Exception as exc:
        raise RetrievalError(f"updating the index {collection.name} failed: {exc}") from None
    if progress is not None and not stale:
        progress(0, 0)
    return SyncReport(len(stale), len(scripts) - len(stale), len(removed), added, time.perf_counter() - started)


# --- search ----------------------------------------------------------------------------


class DenseIndex:
    """Nearest scripts to each query: the best document of each script, by cosine similarity."""

    def __init__(self, collection: Collection, fanout: int = 8) -> None:
        self.collection = collection
        self.fanout = fanout
        self._count: int | None = None

    def search(self, queries: list[str], depth: int) -> list[list[Scored]]:
        if not queries:
            return []
        if self._count is None:
            self._count = self.collection.count()
        n = min(self._count, depth * self.fanout)
        if n == 0:
            return [[] for _ in queries]
        try:
            res = self.collection.query(query_texts=queries, n_results=n, include=["metadatas", "distances"])
        except RetrievalError:
            raise
        except Exception as exc:
            raise RetrievalError(f"searching the index {self.collection.name} failed: {exc}") from None
        metas = res["metadatas"] or []
        dists = res["distances"] or []
        return [_best_per_script(m, d, depth) for m, d in zip(metas, dists, strict=True)]


def _best_per_script(metas: Sequence[Any], dists: Sequence[float], depth: int) -> list[Scored]:
    best: dict[str, Scored] = {}
    for meta, dist in zip(metas, dists, strict=True):
        script_id = str(meta["script_id"])
        if script_id not in best:
            best[script_id] = Scored(script_id, str(meta["category"]), 1.0 - float(dist))
    return sorted(best.values(), key=lambda s: -s.score)[:depth]
