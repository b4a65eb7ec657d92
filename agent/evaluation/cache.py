"""LLM answers cached on disk, so re-running a suite costs no calls.

:class:`CachedOpenAIBackend` wraps :class:`agent.drafting.llm.OpenAIBackend` at its one network
method, ``complete(rendered, params)``: everything before it (prompt choice, token fitting) and
after it (parsing, the guard loop) runs as usual; only the HTTP call is replaced by a lookup.
The key is the sha256 of the prompt files' hashes, the model and endpoint, the call parameters
and the rendered messages, so a changed prompt file, model, temperature, retrieved script or
customer message is a miss. Entries are one JSON file each, written atomically.

Embeddings for the ``embedding`` metric are kept too (one file per embedder, holding the texts
of the last run), so an unchanged golden reply or draft is not embedded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import Settings
from agent.drafting.llm import REVISE_PROMPT, OpenAIBackend
from agent.drafting.prompts import Rendered, load_prompt, prompt_hash
from agent.drafting.transport import ChatTransport, Transport


@dataclass
class DiskCache:
    """A directory of ``<key[:2]>/<key>.json`` files holding one completion each."""

    root: Path

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            raw = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        content = raw.get("content") if isinstance(raw, dict) else None
        return content if isinstance(content, str) else None

    def put(self, key: str, content: str, meta: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"content": content, **meta}, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(payload)
        os.replace(tmp, path)


@dataclass
class CallStats:
    """How many completions went to the endpoint and how many came from the cache."""

    calls: int = 0
    hits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, hit: bool) -> None:
        with self.lock:
            if hit:
                self.hits += 1
            else:
                self.calls += 1


def prompt_hashes(settings: Settings, extra: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every prompt file a backend with these settings may send."""
    names = dict.fromkeys((settings.prompt_version, REVISE_PROMPT, *extra))
    return {name: prompt_hash(name, settings.prompts_dir) for name in names}


def cache_key(hashes: dict[str, str], settings: Settings, rendered: Rendered, params: dict[str, Any]) -> str:
    material = {
        "prompts": hashes,
        "model": settings.llm_model,
        "endpoint": settings.llm_base_url,
        "params": params,
        "messages": [rendered.system, rendered.user],
    }
    return hashlib.sha256(json.dumps(material, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


class CachedTransport:
    """A :class:`~agent.drafting.transport.Transport` that answers from ``cache`` when the same call was made.

    ``cache=None`` bypasses the cache (``--no-cache``): every call goes out and nothing is stored.
    """

    def __init__(
        self, inner: Transport, settings: Settings, cache: DiskCache | None, stats: CallStats, extra: tuple[str, ...]
    ) -> None:
        self.inner = inner
        self.settings = settings
        self.cache = cache
        self.stats = stats
        self._extra = extra

    def key(self, system: str, user: str, params: dict[str, Any]) -> str:
        return cache_key(prompt_hashes(self.settings, self._extra), self.settings, Rendered(system, user), params)

    def cached(self, system: str, user: str, params: dict[str, Any]) -> str | None:
        return None if self.cache is None else self.cache.get(self.key(system, user, params))

    def complete(self, system: str, user: str, params: dict[str, Any]) -> str:
        if self.cache is None:
            self.stats.count(hit=False)
            return self.inner.complete(system, user, params)
        key = self.key(system, user, params)
        stored = self.cache.get(key)
        if stored is not None:
            self.stats.count(hit=True)
            return stored
        self.stats.count(hit=False)
        content = self.inner.complete(system, user, params)
        self.cache.put(key, content, {"model": self.settings.llm_model, "params": params})
        return content


class CachedOpenAIBackend(OpenAIBackend):
    """An :class:`OpenAIBackend` whose completions come from ``cache`` when the same call was made before."""

    def __init__(
        self,
        settings: Settings,
        cache: DiskCache | None,
        stats: CallStats | None = None,
        extra_prompts: tuple[str, ...] = (),
        transport: Transport | None = None,
    ) -> None:
        self.stats = stats or CallStats()
        inner = transport if transport is not None else ChatTransport(settings)
        self.cached_transport = CachedTransport(inner, settings, cache, self.stats, extra_prompts)
        super().__init__(settings, lambda name: load_prompt(name, settings.prompts_dir), self.cached_transport)

    def cached(self, rendered: Rendered, params: dict[str, Any]) -> str | None:
        """The stored completion for this call, if any (never calls the endpoint)."""
        return self.cached_transport.cached(rendered.system, rendered.user, params)

    def complete(self, rendered: Rendered, params: dict[str, Any]) -> str:
        return self.cached_transport.complete(rendered.system, rendered.user, params)


# --- embeddings of golden replies and drafts -----------------------------------------------


def vectors_path(root: Path, embedder_name: str) -> Path:
    return root / f"vectors-{embedder_name}.json"


def load_vectors(path: Path) -> dict[str, list[float]]:
    """Embeddings stored by an earlier run (text -> vector); empty when there are none or they are unreadable."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, list)}


def save_vectors(path: Path, vectors: dict[str, list[float]], keep: set[str]) -> None:
    """Store the embeddings of the texts in ``keep`` (this run's texts), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({t: v for t, v in vectors.items() if t in keep}, ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(payload)
    os.replace(tmp, path)
