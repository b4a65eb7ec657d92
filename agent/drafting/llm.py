"""The OpenAI-compatible LLM backend: a versioned prompt in, a parsed JSON draft out.

Prompts come from the workspace snapshot; the call goes through a :class:`Transport`
(:class:`~agent.drafting.transport.ChatTransport` for any ``/v1/chat/completions`` endpoint:
``KEFU_LLM_BASE_URL``, ``KEFU_LLM_MODEL``, ``KEFU_LLM_API_KEY``). When the transport gives up
it raises :class:`BackendError`, and the pipeline falls back to the script composer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from agent.config import LLM_BACKEND, Settings
from agent.corpus import fill
from agent.drafting.base import Candidate, Grounding, Proposal
from agent.drafting.prompts import Prompt, Rendered, neutralise_tags
from agent.drafting.tokens import count_messages
from agent.drafting.transport import ChatTransport, Transport
from agent.errors import BackendError
from agent.types import Finding, Order, Shop, Turn

REVISE_PROMPT = "revise.v1"
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


# --- the backend ---------------------------------------------------------------------------


class OpenAIBackend:
    """Drafts and revises with a chat model through a :class:`Transport` (an OpenAI-compatible endpoint)."""

    name = LLM_BACKEND

    def __init__(
        self,
        settings: Settings,
        prompts: Callable[[str], Prompt],
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings
        self._prompts = prompts
        self.transport: Transport = transport if transport is not None else ChatTransport(settings)

    # The seam: Backend.draft and Reviser.revise.

    def draft(self, grounding: Grounding) -> Proposal:
        prompt = self._prompts(self.settings.prompt_version)
        fitted = fit_prompt(prompt, grounding, self.settings)
        return self._ask(prompt, fitted)

    def revise(self, grounding: Grounding, text: str, findings: list[Finding]) -> Proposal:
        prompt = self._prompts(REVISE_PROMPT)
        extra = {"draft": neutralise_tags(text), "findings": finding_values(findings)}
        fitted = fit_prompt(prompt, grounding, self.settings, extra)
        return self._ask(prompt, fitted)

    def _ask(self, prompt: Prompt, fitted: FittedPrompt) -> Proposal:
        rendered = fitted.rendered
        content = self.transport.complete(rendered.system, rendered.user, prompt.params.call_kwargs())
        proposal = parse_reply(content, {c.script.id: c.script.declines for c in fitted.candidates})
        proposal.notes[:0] = fitted.notes
        return proposal
