"""应急关键词: supervisor-written, time-bounded rules that answer a burst of the same question.

While a rule's window is open and a message matches its keywords or patterns, the rule's
answer takes precedence over retrieval, and the draft cites it as ``emergency:<id>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from agent.corpus import Corpus, variables
from agent.datafile import load
from agent.errors import CorpusError
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


class _EmergencyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[EmergencyRule] = Field(default_factory=list)


def load_rules(corpus_dir: Path) -> tuple[EmergencyRule, ...]:
    """The emergency rules; none when the file does not exist."""
    return tuple(load(corpus_dir / "emergency.yaml", _EmergencyFile, default=_EmergencyFile()).rules)


def active_match(corpus_dir: Path, message: str, now: datetime) -> EmergencyRule | None:
    """The first rule whose window holds ``now`` and that matches ``message``."""
    for rule in load_rules(corpus_dir):
        if rule.active.contains(now) and rule.matches(message):
            return rule
    return None


def emergency_problems(corpus: Corpus, corpus_dir: Path) -> Iterator[str]:
    """Validation lines for ``kefu corpus validate``."""
    path = corpus_dir / "emergency.yaml"
    try:
        rules = load_rules(corpus_dir)
    except CorpusError as exc:
        yield exc.message
        return
    from agent.corpus import fill, load_shop
    from agent.guardrails import RuleSet, check, rules_for

    shop_vars = load_shop(corpus_dir, "default").vars
    try:
        tone: RuleSet | None = rules_for(corpus_dir)
    except CorpusError:
        tone = None  # a broken rules file is reported by the tone check itself
    ids = corpus.by_id()
    for i, rule in enumerate(rules):
        where = f"{path}: rule {rule.id}"
        if rule.active.end <= rule.active.start:
            yield f"{where}: field active: the window ends before it starts"
        if rule.script is not None and rule.script not in ids:
            yield f"{where}: field script: unknown script {rule.script!r}"
        for var in sorted(variables(rule.reply or "") - shop_vars.keys()):
            yield f"{where}: field reply: variable {{{var}}} is not defined for shop 'default'"
        if rule.reply and tone is not None:
            verdict = check(fill(rule.reply, shop_vars), declared_refusal=rule.declines, rules=tone)
            for f in verdict.findings:
                yield f"{where}: field reply: rule {f.rule} at {f.start}-{f.end} {f.text!r}: {f.message}"
        for pattern in rule.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                yield f"{where}: field patterns: invalid regular expression {pattern!r}: {exc}"
        for other in rules[:i]:
            if other.id == rule.id:
                yield f"{where}: field id: duplicate rule id"
            elif rule.active.overlaps(other.active) and _shared_trigger(rule, other):
                yield f"{where}: field keywords: overlaps rule {other.id} (same keyword, overlapping windows)"


def _shared_trigger(a: EmergencyRule, b: EmergencyRule) -> bool:
    ka = {normalize_query(k) for k in a.keywords}
    kb = {normalize_query(k) for k in b.keywords}
    return bool(ka & kb) or bool(set(a.patterns) & set(b.patterns))
