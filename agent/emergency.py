"""应急关键词: supervisor-written, time-bounded rules that answer a burst of the same question.

While a rule's window is open and a message matches its keywords or patterns, the rule's
answer takes precedence over retrieval, and the draft cites it as ``emergency:<id>``. The rules
are part of the workspace snapshot; their checks are :mod:`agent.workspace.validate`'s.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from agent.text import normalize_query

EMERGENCY_PREFIX = "emergency:"


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: AwareDatetime
    end: AwareDatetime

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end

    def overlaps(self, other: Window) -> bool:
        return self.start <= other.end and other.start <= self.end


class EmergencyRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
    description: str = ""
    keywords: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    active: Window
    script: str | None = None
    reply: str | None = None
    declines: bool = False

    @model_validator(mode="after")
    def _one_answer_and_some_trigger(self) -> EmergencyRule:
        if (self.script is None) == (self.reply is None):
            raise ValueError("give exactly one of script or reply")
        if not self.keywords and not self.patterns:
            raise ValueError("give at least one keyword or pattern")
        return self

    def matches(self, message: str) -> bool:
        text = normalize_query(message)
        if any(normalize_query(k) in text for k in self.keywords):
            return True
        return any(re.search(p, text) for p in self.patterns)


class EmergencyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[EmergencyRule] = Field(default_factory=list)


def active_match(rules: tuple[EmergencyRule, ...], message: str, now: datetime) -> EmergencyRule | None:
    """The first rule whose window holds ``now`` and that matches ``message``."""
    for rule in rules:
        if rule.active.contains(now) and rule.matches(message):
            return rule
    return None
