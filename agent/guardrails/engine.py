"""The checks: one normalisation, one scan, the refusal test; findings with spans and a fix.

:func:`evaluate` returns a :class:`~agent.types.Verdict` and decides nothing else: what to
do with findings (apply the fix, ask for a revision, flag for review) is the caller's policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from agent.guardrails import fixes, refusal
from agent.guardrails.rules import CUE, REFUSAL_RULE, Entry, RuleSet
from agent.text import Normalized, normalize
from agent.types import Finding, RuleId, Verdict


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule broken at a half-open span of the normalised text."""

    rule: str
    start: int
    end: int


def scan(rules: RuleSet, text: str) -> tuple[list[Hit], bool]:
    """The rule hits in normalised ``text`` and whether a refusal cue occurs in it.

    The scan regex finds the longest literal at each position where one starts (stepping one
    character past each find, so overlapping keywords are all seen); keywords starting inside
    an allow word are skipped.
    """
    hits: list[Hit] = []
    cue = False
    window = rules.window
    search = rules.scan.search
    allowed = rules.allowed
    entries = rules.entries
    allowed_until = 0
    match = search(text)
    while match is not None:
        at = match.start()
        literal = match.group()
        if literal in allowed:
            allowed_until = max(allowed_until, match.end())
        elif at >= allowed_until:
            for entry in entries[literal]:
                hit = _hit(entry, text, at, window)
                if hit is not None and entry.scope == CUE:
                    cue = True
                elif hit is not None:
                    hits.append(hit)
        match = search(text, at + 1)
    return _outermost(hits), cue


def _hit(entry: Entry, text: str, at: int, window: int) -> Hit | None:
    """The hit of ``entry`` for a keyword at ``at`` when its context checks pass."""
    start = at
    end = at + entry.length
    low = at - window if at > window else 0
    if entry.before is not None:
        before = entry.before.search(text, low, at)
        if before is None:
            return None
        if entry.span_before:
            start = before.start()
    if entry.not_before is not None and entry.not_before.search(text, low, at) is not None:
        return None
    if entry.after is not None and entry.after.match(text, end) is None:
        return None
    if entry.not_after is not None and entry.not_after.match(text, end) is not None:
        return None
    return Hit(entry.scope, start, end)


def _outermost(hits: list[Hit]) -> list[Hit]:
    """Drop a hit that lies inside another hit of the same rule (one finding per phrase)."""
    if len(hits) < 2:
        return hits
    kept: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (h.rule, h.start, -h.end)):
        if kept and kept[-1].rule == hit.rule and kept[-1].start <= hit.start and hit.end <= kept[-1].end:
            continue
        kept.append(hit)
    return kept


def _finding(rules: RuleSet, rule: str, span: tuple[int, int], original: str) -> Finding:
    text = original[span[0] : span[1]]
    return Finding(
        rule=cast(RuleId, rule), start=span[0], end=span[1], text=text, message=rules.messages[rule].format(text=text)
    )


def _outcome(
    rules: RuleSet, norm: Normalized, query: str | None, declared_refusal: bool | None
) -> tuple[list[Hit], bool, bool]:
    """The rule hits, whether the draft is a refusal, and whether it opens wrongly for one."""
    hits, cue = scan(rules, norm.text)
    if not cue and rules.cue_rules:
        cue = any(hit.rule in rules.cue_rules for hit in hits)
    declines = refusal.is_refusal(rules, norm.text, cue, query, declared_refusal)
    return hits, declines, declines and not refusal.opens_with_apology(rules, norm)


def evaluate(
    draft: str,
    query: str | None,
    declared_refusal: bool | None,
    rules: RuleSet,
    *,
    with_fix: bool = True,
) -> Verdict:
    """Check ``draft`` against every rule; offer a safe fix when one exists and ``with_fix``."""
    norm = normalize(draft, rules.max_run)
    hits, declines, bad_opener = _outcome(rules, norm, query, declared_refusal)
    if not hits and not bad_opener:
        return Verdict(ok=True, is_refusal=declines, findings=[], fixed=None)
    findings = [_finding(rules, hit.rule, norm.cover(hit.start, hit.end), draft) for hit in hits]
    if bad_opener:
        findings.append(_finding(rules, REFUSAL_RULE, refusal.opener_span(rules, norm), draft))
    findings.sort(key=lambda f: (f.start, f.end, f.rule))
    fixed = None
    if with_fix:
        recheck_as = True if declines else declared_refusal

        def passes(fixed: Normalized) -> bool:
            again, _, again_bad_opener = _outcome(rules, fixed, query, recheck_as)
            return not again and not again_bad_opener

        flagged: dict[str, list[tuple[int, int]]] = {}
        for hit in hits:
            flagged.setdefault(hit.rule, []).append((hit.start, hit.end))
        fixed = fixes.propose(rules, norm, flagged, bad_opener, passes)
    return Verdict(ok=False, is_refusal=declines, findings=findings, fixed=fixed)
