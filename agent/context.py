"""Conversation and order context: follow-ups read with the turn before, scripts fit to the order."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.datafile import regex_problem
from agent.text import normalize_query
from agent.types import Order, Platform, Script, Turn


class ContextRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    followup_cues: list[str] = Field(default_factory=list)
    max_followup_chars: int = Field(default=12, ge=1)
    max_bare_chars: int = Field(default=4, ge=0)
    ellipsis_particles: list[str] = Field(default_factory=list)
    # Latin shorthand and pinyin customers type for words (yf 运费, wl 物流, tuihuo 退货), read as
    # the words for retrieval; matched as whole Latin tokens, case folded.
    shorthand: dict[str, str] = Field(default_factory=dict)
    # Removed from what is retrieved with (never from the draft or its checks): long digit runs,
    # an order or tracking number the customer pastes (订单号2023110812345), whose digits match
    # scripts by their numbers (0元) and say nothing about the question.
    unread: list[str] = Field(default_factory=list)

    @field_validator("shorthand")
    @classmethod
    def _latin_keys(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [key for key in value if not re.fullmatch(r"[A-Za-z]+", key)]
        if bad:
            raise ValueError(f"shorthand keys are Latin letters only, not {bad[0]!r}")
        return {key.lower(): word for key, word in value.items()}  # matched case folded

    @field_validator("unread")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        problem = regex_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


_LATIN = re.compile(r"(?<![A-Za-z])[A-Za-z]+(?:\s+[A-Za-z]+)*(?![A-Za-z])")


def _read_shorthand(run: str, table: dict[str, str]) -> str:
    """Latin tokens as the words they stand for; a run of them all listed (xizang neng fa ma)
    reads as one phrase (西藏能发吗), else each listed token is replaced where it stands."""
    tokens = run.split()
    words = [table.get(token.lower()) for token in tokens]
    if all(words):
        return "".join(w for w in words if w)
    return " ".join(w or token for w, token in zip(words, tokens, strict=True))


def _previous_customer_turn(turns: list[Turn] | tuple[Turn, ...]) -> int | None:
    """The index of the customer's last turn that says something, or None."""
    return next(
        (n for n in range(len(turns) - 1, -1, -1) if turns[n].role == "customer" and turns[n].text.strip()), None
    )


def is_followup(message: str, rules: ContextRules) -> bool:
    text = normalize_query(message).strip()
    if len(text) <= rules.max_bare_chars:
        return True
    return len(text) <= rules.max_followup_chars and text.startswith(tuple(rules.followup_cues))


def is_ellipsis(message: str, rules: ContextRules) -> bool:
    """A follow-up that names only a new value for the earlier question: 那运费呢, 那新疆呢."""
    text = re.sub(r"[\W_]+", "", normalize_query(message))
    tail = next((p for p in rules.ellipsis_particles if p and text.endswith(p)), None)
    if tail is None:
        return False
    core = text[: -len(tail)]
    cue = max((c for c in rules.followup_cues if core.startswith(c)), key=len, default="")
    return len(core) - len(cue) <= rules.max_bare_chars


def retrieval_text(message: str, turns: list[Turn] | tuple[Turn, ...], rules: ContextRules) -> str:
    """The text to retrieve with: a follow-up is joined to the customer's previous turn.

    Only the customer's own words are carried over; what a pasted transcript says the shop
    promised is never read as a fact (the composer drafts from scripts alone).
    """
    at = _previous_customer_turn(turns)
    previous = turns[at].text if at is not None else None
    text = f"{previous} {message}" if previous and is_followup(message, rules) else message
    for pattern in rules.unread:
        text = re.sub(pattern, " ", text)
    if rules.shorthand:
        text = _LATIN.sub(lambda m: _read_shorthand(m.group(), rules.shorthand), text)
    return text if text.strip() else message


def answered_turn(message: str, turns: list[Turn] | tuple[Turn, ...], rules: ContextRules) -> str | None:
    """The customer's previous turn when a follow-up is joined to it and the agent has replied
    since: what it asked was answered, so its questions are context for the follow-up, not asked again."""
    previous = _previous_customer_turn(turns)
    if previous is None or not is_followup(message, rules) or is_ellipsis(message, rules):
        return None
    replied = any(t.role == "agent" and t.text.strip() for t in turns[previous + 1 :])
    return turns[previous].text if replied else None


def named_platform(texts: Iterable[str]) -> str | None:
    """The one platform the customer's words name (天猫上你帮我改下价), or None (none, or several)."""
    said = " ".join(normalize_query(t) for t in texts)
    named = [p for p in get_args(Platform) if p in said]
    return named[0] if len(named) == 1 else None


def contradicts(script: Script, order: Order | None, platform: str) -> bool:
    """Whether the script's declared conditions rule it out for this order and platform."""
    cond = script.conditions
    if cond.platform and platform not in cond.platform:
        return True
    return bool(order is not None and order.status is not None and cond.status and order.status not in cond.status)


def fits_explicitly(script: Script, order: Order | None) -> bool:
    cond = script.conditions
    return bool(order is not None and order.status is not None and order.status in cond.status)
