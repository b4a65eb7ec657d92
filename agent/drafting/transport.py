"""The LLM transport seam: rendered messages in, the model's text out.

    Transport.complete(system, user, params) -> str        raises BackendError when it gives up

:class:`ChatTransport` speaks to any OpenAI-compatible ``/v1/chat/completions`` endpoint through
LangChain's ``ChatOpenAI``, with bounded retries; :class:`~agent.drafting.fake.FakeTransport`
answers from a script, so prompt fitting and reply parsing are tested without HTTP. The one
place OpenAI SDK errors become :class:`BackendError`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

import openai

from agent.config import Settings
from agent.errors import BackendError, ConfigError

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

PLACEHOLDER_KEY = "kefu-no-key"  # local servers (Ollama, vLLM) accept any key, the SDK wants one
MAX_RETRY_AFTER_S = 5.0  # a server asking for a longer wait gets the composer instead
BACKOFF_S = 0.25
MAX_BACKOFF_S = 2.0
_RETRY_STATUS = frozenset({408, 409, 429})


class Transport(Protocol):
    def complete(self, system: str, user: str, params: dict[str, Any]) -> str: ...


@lru_cache(maxsize=8)
def _chat_model(base_url: str | None, api_key: str, model: str, timeout_s: float) -> ChatOpenAI:
    """One client per endpoint, reused by every backend and call (retries are ours, not the SDK's)."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=model,
        base_url=base_url,
        api_key=api_key,
        timeout=timeout_s,
        max_retries=0,
        use_responses_api=False,
    )


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            return None  # an HTTP date: use our own backoff
    return None


def _describe(exc: openai.OpenAIError, timeout_s: float) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return f"no answer within {timeout_s:g}s (KEFU_LLM_TIMEOUT_S)"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return f"cannot connect ({type(cause).__name__}: {cause})"
    if isinstance(exc, openai.APIStatusError):
        hint = " (check KEFU_LLM_API_KEY)" if exc.status_code in (401, 403) else ""
        hint = " (check KEFU_LLM_MODEL)" if exc.status_code == 404 else hint
        return f"HTTP {exc.status_code}: {exc.message}{hint}"
    if isinstance(exc, openai.LengthFinishReasonError):
        return "the answer was cut off at the prompt's max_tokens"
    return f"{type(exc).__name__}: {exc}"


def _retryable(exc: openai.OpenAIError) -> bool:
    if isinstance(exc, openai.APIConnectionError):  # timeouts included
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code in _RETRY_STATUS or exc.status_code >= 500)


class ChatTransport:
    """Any OpenAI-compatible endpoint through LangChain, retried on timeouts, 429 and 5xx."""

    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self._sleep = sleep
        self._model: ChatOpenAI | None = None
        self._lock = threading.Lock()

    def chat_model(self) -> ChatOpenAI:
        """The langchain client, created on first use."""
        with self._lock:
            if self._model is None:
                s = self.settings
                if not s.llm_configured:
                    raise ConfigError("no LLM configured: set KEFU_LLM_BASE_URL (and KEFU_LLM_API_KEY if it needs one)")
                if s.llm_base_url and not s.llm_base_url.startswith(("http://", "https://")):
                    raise ConfigError(f"KEFU_LLM_BASE_URL {s.llm_base_url!r} must start with http:// or https://")
                key = s.llm_api_key or PLACEHOLDER_KEY
                self._model = _chat_model(s.llm_base_url, key, s.llm_model, s.llm_timeout_s)
            return self._model

    def complete(self, system: str, user: str, params: dict[str, Any]) -> str:
        """The model's text for one rendered prompt, with bounded retries."""
        model = self.chat_model()
        messages = [("system", system), ("human", user)]
        attempts = self.settings.llm_max_retries + 1
        for attempt in range(attempts):
            try:
                reply = model.invoke(messages, **params)
            except openai.OpenAIError as exc:
                delay = self._retry_delay(exc, attempt, attempts)
                if delay is None:
                    raise self._failure(exc, attempt + 1) from exc
                self._sleep(delay)
                continue
            return reply.content if isinstance(reply.content, str) else str(reply.text)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _retry_delay(self, exc: openai.OpenAIError, attempt: int, attempts: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if not _retryable(exc) or attempt + 1 >= attempts:
            return None
        asked = _retry_after(exc) if isinstance(exc, openai.APIStatusError) else None
        if asked is not None:
            return asked if asked <= MAX_RETRY_AFTER_S else None
        backoff = min(BACKOFF_S * 2.0**attempt, MAX_BACKOFF_S)
        return backoff * (0.8 + 0.4 * random.random())  # jitter: clients do not retry in step

    def _failure(self, exc: openai.OpenAIError, tries: int) -> BackendError:
        s = self.settings
        where = s.llm_base_url or "api.openai.com"
        detail = _describe(exc, s.llm_timeout_s)
        if isinstance(exc, openai.APIStatusError) and (asked := _retry_after(exc)) and asked > MAX_RETRY_AFTER_S:
            detail += f"; the server asks to retry after {asked:g}s"
        plural = "s" if tries > 1 else ""
        return BackendError(f"LLM {s.llm_model} at {where} failed after {tries} attempt{plural}: {detail}")
