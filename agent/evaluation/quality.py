"""Metrics of a draft as a piece of writing and as a promise: repeated facts, fragments, length,
ok-precision and the correct share.

``repeated_fact`` is 1 when two sentences of the draft share a run of ``repeated_min_run``
characters (the same fact said twice: 订单满280元还会随机送一份小礼品 stitched from two scripts);
``fragment`` is 1 when a sentence is a broken piece (a bare 给您带来困扰！ left when a repeated
apology was cut); ``length_ratio`` is the draft's length over the golden reply's (summaries
report the median). ``ok_precision`` scores only drafts marked ``ok``: 1 when the draft cites an
expected script for every question and states every must fact. ``correct`` scores every draft:
cites an expected script for every question, every must fact, no forbidden phrase, tone clean,
declines exactly when the golden reply does. The cue lists live in ``fragments.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from agent.evaluation.lexical import Score, surface

_SENTENCE_END = re.compile(r"(?<=[。！？!?~～；;])")
_CONTENT = re.compile(r"[\W_]+", re.UNICODE)


class FragmentRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dangling_starts: list[str] = Field(default_factory=list)
    dangling_ends: list[str] = Field(default_factory=list)
    address: list[str] = Field(default_factory=list)
    repeated_min_run: int = Field(default=8, ge=2)


@lru_cache(maxsize=1)
def fragment_rules() -> FragmentRules:
    path = Path(__file__).with_name("fragments.yaml")
    return FragmentRules.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def sentences(text: str) -> list[str]:
    """The draft cut after each sentence-ending mark; empty pieces dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def content(text: str) -> str:
    """Letters, digits and CJK only, in the surface form: what two sentences can share."""
    return _CONTENT.sub("", surface(text))


def _shared_run(a: str, b: str, at_least: int) -> str:
    """A run of at least ``at_least`` characters found in both (the first), or ``""``."""
    for i in range(len(a) - at_least + 1):
        piece = a[i : i + at_least]
        if piece in b:
            j = i + at_least
            while j < len(a) and a[i : j + 1] in b:
                j += 1
            return a[i:j]
    return ""


def repeated_fact(text: str, rules: FragmentRules | None = None) -> Score:
    """1 when two sentences of the draft share a long run of characters (a fact said twice)."""
    rules = rules or fragment_rules()
    parts = [content(s) for s in sentences(text)]
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            run = _shared_run(a, b, rules.repeated_min_run)
            if run:
                return Score(1.0, f"said twice: {run}")
    return Score(0.0, f"no fact repeated across {len(parts)} sentences")


def _strip_address(sentence: str, address: Sequence[str]) -> str:
    for opener in sorted(address, key=len, reverse=True):
        if sentence.startswith(opener):
            return sentence[len(opener) :]
    return sentence


def fragment(text: str, rules: FragmentRules | None = None) -> Score:
    """1 when a sentence of the draft is a broken piece: dangling start or end, or no words."""
    rules = rules or fragment_rules()
    for sentence in sentences(text):
        body = _strip_address(sentence, rules.address)
        if not content(body):
            if body.strip("。！？!?~～；; "):
                return Score(1.0, f"a sentence of punctuation only: {sentence!r}")
            continue
        if body.startswith(tuple(rules.dangling_starts)):
            return Score(1.0, f"dangling start: {sentence!r}")
        if body.rstrip("。！？!?~～；; ").endswith(tuple(rules.dangling_ends)):
            return Score(1.0, f"dangling end: {sentence!r}")
    return Score(0.0, "every sentence whole")


def length_ratio(text: str, golden: str) -> Score:
    """Characters of the draft over characters of the golden reply (content only)."""
    draft, ref = len(content(text)), len(content(golden))
    if ref == 0:
        return Score(None, "empty golden reply")
    return Score(draft / ref, f"{draft} vs {ref} characters")


def uncovered(cited: Sequence[str], groups: Sequence[Sequence[str]]) -> list[list[str]]:
    """The expected groups (one per question) none of whose scripts the draft cites.

    An empty group is a question no script of the corpus answers (改地址 in the second writers'
    set): it is never covered, so a draft marked ``ok`` for it is a wrong ``ok``.
    """
    said = set(cited)
    return [list(g) for g in groups if not (said & set(g))]


def ok_precision(status: str, cited: Sequence[str], groups: Sequence[Sequence[str]], missing: Sequence[str]) -> Score:
    """For an ``ok`` draft: 1 when it cites an expected script for every question and lacks no fact."""
    if status != "ok":
        return Score(None, f"status {status or 'none'}: not sent as is")
    gaps = uncovered(cited, groups)
    if not gaps and not missing:
        return Score(1.0, "ok, every question cited and every fact said")
    why = [f"no citation for {'/'.join(g) or 'a question no script answers'}" for g in gaps]
    why += [f"missing {m}" for m in missing]
    return Score(0.0, "ok but " + "; ".join(why))


def correct(
    cited: Sequence[str],
    groups: Sequence[Sequence[str]],
    missing: Sequence[str],
    forbidden: Sequence[str],
    tone_clean: bool,
    refusal_agrees: bool,
) -> Score:
    """1 when the draft could be sent as the golden reply's equal (see the module docstring)."""
    why = [f"no citation for {'/'.join(g) or 'a question no script answers'}" for g in uncovered(cited, groups)]
    why += [f"missing {m}" for m in missing] + [f"says {p}" for p in forbidden]
    if not tone_clean:
        why.append("tone findings")
    if not refusal_agrees:
        why.append("refusal disagrees")
    return Score(0.0 if why else 1.0, "; ".join(why) if why else "correct")
