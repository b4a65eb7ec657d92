"""The OpenAI-compatible LLM backend: a versioned prompt in, a parsed JSON draft out.

Any endpoint that speaks ``/v1/chat/completions`` works (OpenAI, vLLM, Ollama, ...):
``KEFU_LLM_BASE_URL``, ``KEFU_LLM_MODEL``, ``KEFU_LLM_API_KEY`` (a placeholder is sent when only
a base URL is set). Timeouts, connection failures, 429 and 5xx are retried with bounded
exponential backoff (``KEFU_LLM_MAX_RETRIES``), honouring a short ``Retry-After``; then a
:class:`BackendError` says what failed, and the pipeline falls back to the script composer.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import openai

from agent.config import Settings
from agent.corpus import fill
from agent.drafting.base import Candidate, Grounding, Proposal
from agent.drafting.prompts import Prompt, Rendered, load_prompt, neutralise_tags
from agent.drafting.tokens import count_messages
from agent.errors import BackendError, ConfigError
from agent.types import Finding, Order, Shop, Turn

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

REVISE_PROMPT = "revise.v1"
PLACEHOLDER_KEY = "kefu-no-key"  # local servers (Ollama, vLLM) accept any key, the SDK wants one
MAX_RETRY_AFTER_S = 5.0  # a server asking for a longer wait gets the composer instead
BACKOFF_S = 0.25
MAX_BACKOFF_S = 2.0
_RETRY_STATUS = frozenset({408, 409, 429})
_FENCE = re.compile(r"```[A-Za-z]*\s*(.*?)```", re.DOTALL)
_TRUE = frozenset({"true", "yes", "y", "1", "是", "对"})
_FALSE = frozenset({"false", "no", "n", "0", "否", "", "none", "null"})


# --- what the prompt is told -------------------------------------------------------------


def _script_values(cand: Candidate, shop: Shop) -> dict[str, Any]:
    script = cand.script
    return {
        "id": script.id,
        "title": script.title,
        "reply": fill(script.reply, shop.vars),
        "declines": script.declines,
        "emergency": cand.emergency,
        "next_steps": [fill(step, shop.vars) for step in script.next_steps],
    }


def _order_values(order: Order | None) -> dict[str, str]:
    if order is None:
        return {}
    return {key: neutralise_tags(str(value)) for key, value in order.model_dump(exclude_none=True).items()}


def _turn_values(turns: Collection[Turn]) -> list[dict[str, str]]:
    return [{"role": t.role, "text": neutralise_tags(t.text)} for t in turns]


def context_values(grounding: Grounding, candidates: Collection[Candidate], turns: Collection[Turn]) -> dict[str, Any]:
    """Every variable the draft and revise prompts share; customer-written text is neutralised."""
    shop = grounding.shop
    platform = (grounding.order.platform if grounding.order else None) or shop.platform
    return {
        "shop_name": shop.vars.get("shop_name", shop.display_name),
        "platform": platform,
        "shop_facts": dict(shop.vars),
        "order": _order_values(grounding.order),
        "turns": _turn_values(turns),
        "scripts": [_script_values(c, shop) for c in candidates],
        "customer_message": neutralise_tags(grounding.message),
    }


def finding_values(findings: Collection[Finding]) -> list[dict[str, str]]:
    return [{"rule": f.rule, "text": neutralise_tags(f.text), "message": f.message} for f in findings]


@dataclass(frozen=True)
class FittedPrompt:
    """A rendered prompt within the token budget and the scripts it carries."""

    rendered: Rendered
    candidates: tuple[Candidate, ...]
    tokens: int
    notes: tuple[str, ...]


def fit_prompt(
    prompt: Prompt, grounding: Grounding, settings: Settings, extra: dict[str, Any] | None = None
) -> FittedPrompt:
    """Render ``prompt``, dropping the least relevant scripts (then the oldest turns) to fit the budget.

    One script is always kept; if even that prompt is over ``settings.prompt_token_budget``, a
    BackendError lets the pipeline fall back to the composer.
    """
    candidates, turns = grounding.scripts(), list(grounding.turns)
    budget, dropped_scripts, dropped_turns = settings.prompt_token_budget, [], 0
    while True:
        rendered = prompt.render({**context_values(grounding, candidates, turns), **(extra or {})})
        tokens = count_messages(rendered.contents(), settings.llm_model)
        if tokens <= budget:
            break
        if len(candidates) > 1:
            dropped_scripts.append(candidates.pop().script.id)
        elif turns:
            turns.pop(0)
            dropped_turns += 1
        else:
            raise BackendError(
                f"prompt {prompt.name} needs {tokens} tokens with a single script and no earlier turns; "
                f"the budget is {budget} (KEFU_PROMPT_TOKEN_BUDGET)"
            )
    notes = []
    if dropped_scripts:
        notes.append(
            f"prompt {prompt.name}: dropped {len(dropped_scripts)} least relevant scripts "
            f"({', '.join(dropped_scripts)}) to fit the {budget}-token budget"
        )
    if dropped_turns:
        notes.append(f"prompt {prompt.name}: dropped {dropped_turns} oldest turns to fit the {budget}-token budget")
    return FittedPrompt(rendered, tuple(candidates), tokens, tuple(notes))


# --- what the model says -----------------------------------------------------------------


def _json_objects(content: str) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``content``: the whole text, fenced blocks, then any ``{...}`` inside."""
    for text in (content, *_FENCE.findall(content)):
        try:
            value = json.loads(text.strip())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            yield value
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", content):
        try:
            value, _ = decoder.raw_decode(content, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            yield value


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    return None


def _as_ids(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int)]
    return []


def parse_reply(content: str | None, scripts: dict[str, bool]) -> Proposal:
    """A Proposal from the model's answer; ``scripts`` maps each id the prompt offered to its ``declines``.

    Tolerates code fences, text around the JSON, missing fields and ``"true"`` strings;
    raises BackendError when no object with a non-empty ``draft`` string is found.
    """
    obj = next(
        (o for o in _json_objects(content or "") if isinstance(o.get("draft"), str) and o["draft"].strip()), None
    )
    if obj is None:
        shown = (content or "").strip().replace("\n", " ")
        shown = shown[:80] + ("..." if len(shown) > 80 else "")
        raise BackendError(f"the LLM's answer has no usable draft (expected JSON with a 'draft' string): {shown!r}")
    notes: list[str] = []
    cited: list[str] = []
    unknown: list[str] = []
    for sid in dict.fromkeys(_as_ids(obj.get("cited_ids"))):
        (cited if sid in scripts else unknown).append(sid)
    if unknown:
        notes.append(f"dropped cited ids that were not retrieved: {', '.join(unknown)}")
    is_refusal = _as_bool(obj.get("is_refusal"))
    if is_refusal is None:
        is_refusal = any(scripts[sid] for sid in cited)
        notes.append("the LLM gave no is_refusal: taken from the cited scripts")
    return Proposal(text=obj["draft"].strip(), is_refusal=is_refusal, cited_ids=cited, notes=notes)


# --- calling the endpoint ----------------------------------------------------------------


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


class OpenAIBackend:
    """Drafts and revises with a chat model behind any OpenAI-compatible endpoint."""

    name = "openai"

    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self._sleep = sleep
        self._model: ChatOpenAI | None = None
        self._lock = threading.Lock()

    # The seam: Backend.draft and Reviser.revise.

    def draft(self, grounding: Grounding) -> Proposal:
        prompt = self._prompt(self.settings.prompt_version)
        fitted = fit_prompt(prompt, grounding, self.settings)
        return self._ask(prompt, fitted)

    def revise(self, grounding: Grounding, text: str, findings: list[Finding]) -> Proposal:
        prompt = self._prompt(REVISE_PROMPT)
        extra = {"draft": neutralise_tags(text), "findings": finding_values(findings)}
        fitted = fit_prompt(prompt, grounding, self.settings, extra)
        return self._ask(prompt, fitted)

    # Parts.

    def _prompt(self, name: str) -> Prompt:
        return load_prompt(name, self.settings.prompts_dir)

    def _ask(self, prompt: Prompt, fitted: FittedPrompt) -> Proposal:
        content = self.complete(fitted.rendered, prompt.params.call_kwargs())
        proposal = parse_reply(content, {c.script.id: c.script.declines for c in fitted.candidates})
        proposal.notes[:0] = fitted.notes
        return proposal

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

    def complete(self, rendered: Rendered, params: dict[str, Any]) -> str:
        """The model's text for one rendered prompt, with bounded retries."""
        model = self.chat_model()
        messages = [("system", rendered.system), ("human", rendered.user)]
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
