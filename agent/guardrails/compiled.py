"""The compiled form of a tone rules file: what :func:`agent.guardrails.check` runs on."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from agent.guardrails.refusal_model import RefusalModel


class Finder(Protocol):
    """What the scan needs of an Aho-Corasick automaton: every (pattern index, start, end), overlaps included."""

    def find_matches_as_indexes(self, haystack: str, overlapping: bool = ...) -> list[tuple[int, int, int]]: ...


@dataclass(frozen=True, slots=True)
class Entry:
    """A keyword that starts a scanned literal: its scope, its length and its context checks."""

    scope: str
    length: int
    before: re.Pattern[str] | None = None
    not_before: re.Pattern[str] | None = None
    after: re.Pattern[str] | None = None
    not_after: re.Pattern[str] | None = None
    span_before: bool = False


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    query: re.Pattern[str]
    declines: re.Pattern[str] | None
    grants: re.Pattern[str] | None


@dataclass(frozen=True, slots=True)
class FixTable:
    """One rule's fixes: a single regex whose group ``f<i>`` is entry i, and the replacements."""

    pattern: re.Pattern[str]
    replacements: Mapping[str, str]


@dataclass(frozen=True)
class RuleSet:
    """Everything :func:`agent.guardrails.check` needs, compiled from one tone_rules.yaml."""

    path: Path
    max_run: int
    window: int
    scan: re.Pattern[str]
    # the same literals as one Aho-Corasick automaton (ahocorasick_rs), when that library is installed:
    # it finds every literal in one pass, several times cheaper than the regex over a 200-character draft
    finder: Finder | None
    literals: tuple[str, ...]  # the finder's pattern index -> literal
    entries: Mapping[str, tuple[Entry, ...]]
    allowed: frozenset[str]
    messages: Mapping[str, str]
    allow: Mapping[str, tuple[str, ...]]
    opener: re.Pattern[str]
    greeting: re.Pattern[str]
    weak_opener: re.Pattern[str]
    apology: str
    fix_prefix: str
    greeting_mark: str
    marks: str
    cue_rules: frozenset[str]
    intents: tuple[Intent, ...]
    intent_query: re.Pattern[str] | None  # any intent's query: one search rules out every intent
    negators: tuple[str, ...]  # an intent's grants right after one of these grant nothing
    grant_opener: re.Pattern[str] | None  # the reply opens (after a greeting) by granting what was asked
    fixes: Mapping[str, FixTable]
    facts: re.Pattern[str]
    manual_fix: str  # added to the message of a finding no fix entry covers: the agent rewrites it
    # the learned reading of refusals the rules leave undecided, and its file's (path, mtime, size)
    refusal_model: RefusalModel | None = None
    model_stamp: tuple[Path, int, int] | None = None
    # per customer query (as given), the intents it asks about and its matching form: filled by the refusal reader
    asked: dict[str, tuple[tuple[Intent, ...], str]] = field(default_factory=dict, compare=False, repr=False)

    def lexicon(self) -> list[str]:
        """Every literal the scan looks for (keywords and the allow words that touch them)."""
        return list(self.literals)
