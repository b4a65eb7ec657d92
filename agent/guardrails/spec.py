"""The schema of ``corpus/tone_rules.yaml`` (strict: an unknown field is an error) and the
supervisor-facing messages of the loader (``agent/_static/guardrail_messages.yaml``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

RULES_FILE = "tone_rules.yaml"
LexicalRuleId = Literal["over_intimacy", "negative_language", "contains_danshi"]
LEXICAL_RULES: tuple[LexicalRuleId, ...] = ("over_intimacy", "negative_language", "contains_danshi")
REFUSAL_RULE = "refusal_without_apology"
CUE = "refusal"  # the scope of refusal cues and of their allow words
_MESSAGES_FILE = Path(__file__).resolve().parent.parent / "_static" / "guardrail_messages.yaml"


@lru_cache(maxsize=1)
def _messages() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(_MESSAGES_FILE.read_text(encoding="utf-8"))
    return loaded


def say(key: str, **values: object) -> str:
    """A message to supervisors from ``agent/_static/guardrail_messages.yaml``."""
    return str(_messages()[key]).format(**values)


# --- the file's schema -------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeywordGroup(_Strict):
    note: str = ""
    words: list[str] = Field(min_length=1)
    before: str | None = None
    not_before: str | None = None
    after: str | None = None
    not_after: str | None = None
    span_before: bool = False


class LexicalRuleSpec(_Strict):
    message: str
    keywords: list[KeywordGroup] = Field(min_length=1)
    allow: list[str] = Field(default_factory=list)


class RulesSpec(_Strict):
    over_intimacy: LexicalRuleSpec
    negative_language: LexicalRuleSpec
    contains_danshi: LexicalRuleSpec


class IntentSpec(_Strict):
    name: str
    query: str
    declines: str | None = None
    grants: str | None = None


class RefusalSpec(_Strict):
    message: str
    apology: str
    greetings: list[str] = Field(min_length=1)
    greeting_marks: str = ""
    weak_openers: list[str] = Field(default_factory=list)
    fix_prefix: str
    rules_as_cues: list[LexicalRuleId] = Field(default_factory=list)
    cues: list[KeywordGroup] = Field(min_length=1)
    allow: list[str] = Field(default_factory=list)
    intents: list[IntentSpec] = Field(default_factory=list)
    grants: str | None = None
    grant_topic: int = Field(default=0, ge=0, le=12)
    negators: list[str] = Field(default_factory=list)
    # the learned reading of refusals (agent/guardrails/refusal_model.py): a file beside tone_rules.yaml
    model: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+\.json$")
    model_threshold: float = Field(default=0.9, gt=0.0, lt=1.0)


class FixSpec(_Strict):
    rule: LexicalRuleId
    match: str
    replace: str


class FactsSpec(_Strict):
    couriers: list[str] = Field(default_factory=list)
    times: list[str] = Field(default_factory=list)


class ToneRulesSpec(_Strict):
    version: Literal[1]
    max_run: int = Field(default=2, ge=1, le=5)
    window: int = Field(default=16, ge=1, le=64)
    rules: RulesSpec
    refusal: RefusalSpec
    fixes: list[FixSpec] = Field(default_factory=list)
    manual_fix: str = ""
    facts: FactsSpec = Field(default_factory=FactsSpec)
