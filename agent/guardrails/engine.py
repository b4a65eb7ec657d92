"""The checks: one normalisation, one scan, the refusal test; findings with spans and a fix.

:func:`evaluate` returns a :class:`~agent.types.Verdict` and decides nothing else: what to
do with findings (apply the fix, ask for a revision, flag for review) is the caller's policy.
Everything that depends only on the rules is compiled in the :class:`RuleSet`; per call there is
one normalisation of the draft (and of the query, only when an intent could use it, and once per
query: the rules remember which intents it asks about), one scan, and, for a draft with findings,
the fix and one re-check of the fixed text.
"""

from __future__ import annotations

from typing import cast

from agent.guardrails import fixes, refusal
from agent.guardrails.rules import CUE, REFUSAL_RULE, Entry, Intent, RuleSet
from agent.text import Normalized, normalize
from agent.types import Finding, RuleId, Verdict

Hit = tuple[str, int, int]  # rule, start, end in the normalised text


def scan(rules: RuleSet, text: str) -> tuple[list[Hit], bool]:
    """The rule hits in normalised ``text`` and whether a refusal cue occurs in it.

    At each position where a literal starts, the longest literal there is read (so overlapping
    keywords are all seen); keywords starting inside an allow word are skipped. The literals are
    found in one Aho-Corasick pass when ``rules.finder`` is there, else by the scan regex.
    """
    finder = rules.finder
    if finder is None:
        return _scan_from(rules, text, _regex_finds(rules, text))
    found = finder.find_matches_as_indexes(text, True)
    if not found:
        return [], False
    literals = rules.literals
    if len(found) == 1:
        index, start, _ = found[0]
        return _scan_from(rules, text, [(start, literals[index])])
    longest: dict[int, tuple[int, int]] = {}  # start -> (end, pattern index)
    for index, start, end in found:
        if start not in longest or end > longest[start][0]:
            longest[start] = (end, index)
    return _scan_from(rules, text, [(start, literals[longest[start][1]]) for start in sorted(longest)])


def _regex_finds(rules: RuleSet, text: str) -> list[tuple[int, str]]:
    """(start, longest literal there) by the trie regex, stepping one character past each find."""
    finds = []
    search = rules.scan.search
    match = search(text)
    while match is not None:
        at = match.start()
        finds.append((at, match.group()))
        match = search(text, at + 1)
    return finds


def _scan_from(rules: RuleSet, text: str, finds: list[tuple[int, str]]) -> tuple[list[Hit], bool]:
    hits: list[Hit] = []
    cue = False
    window = rules.window
    allowed = rules.allowed
    entries = rules.entries
    allowed_until = 0
    for at, literal in finds:
        if literal in allowed:
            end = at + len(literal)
            if end > allowed_until:
                allowed_until = end
        elif at >= allowed_until:
            for entry in entries[literal]:
                if entry.scope == CUE:
                    if not cue and _hit(entry, text, at, window) is not None:
                        cue = True  # one cue is enough: the others are not looked for
                    continue
                hit = _hit(entry, text, at, window)
                if hit is not None:
                    hits.append(hit)
    return (_outermost(hits) if len(hits) > 1 else hits), cue


def _hit(entry: Entry, text: str, at: int, window: int) -> Hit | None:
    """The hit of ``entry`` for a keyword at ``at`` when its context checks pass.

    The anchored checks after the keyword run first: they are cheaper than a search of the
    window before it, and every check must pass, so their order does not change the answer."""
    end = at + entry.length
    if entry.after is not None and entry.after.match(text, end) is None:
        return None
    if entry.not_after is not None and entry.not_after.match(text, end) is not None:
        return None
    start = at
    if entry.before is not None or entry.not_before is not None:
        low = at - window if at > window else 0
        if entry.before is not None:
            before = entry.before.search(text, low, at)
            if before is None:
                return None
            if entry.span_before:
                start = before.start()
        if entry.not_before is not None and entry.not_before.search(text, low, at) is not None:
            return None
    return entry.scope, start, end


def _outermost(hits: list[Hit]) -> list[Hit]:
    """Drop a hit that lies inside another hit of the same rule (one finding per phrase)."""
    kept: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (h[0], h[1], -h[2])):
        if kept and kept[-1][0] == hit[0] and kept[-1][1] <= hit[1] and hit[2] <= kept[-1][2]:
            continue
        kept.append(hit)
    return kept


def _finding(rules: RuleSet, rule: str, span: tuple[int, int], original: str, note: str = "") -> Finding:
    text = original[span[0] : span[1]]
    message = rules.messages[rule].format(text=text) + note
    return Finding(rule=cast(RuleId, rule), start=span[0], end=span[1], text=text, message=message)


class Asked:
    """The customer's query, read on first use (most drafts are decided before it is): the intents
    it asks about, from the rules' per-query cache (one query is checked against several drafts)."""

    __slots__ = ("_intents", "_rules", "raw")

    def __init__(self, rules: RuleSet, raw: str | None) -> None:
        self._rules = rules
        self.raw = raw if raw and (rules.intent_query is not None or rules.refusal_model is not None) else None
        self._intents: tuple[Intent, ...] | None = None

    def intents(self) -> tuple[Intent, ...]:
        if self._intents is None:
            self._intents = () if self.raw is None else refusal.asked_intents(self._rules, self.raw)
        return self._intents


def _outcome(rules: RuleSet, text: str, asked: Asked, declared: bool | None) -> tuple[list[Hit], bool, bool]:
    """The rule hits, whether the draft is a refusal, and whether it opens wrongly for one."""
    hits, cue = scan(rules, text)
    weak = False
    if not cue and hits and rules.cue_rules:
        weak = any(hit[0] in rules.cue_rules for hit in hits)
    declines = refusal.is_refusal(rules, text, cue, asked.intents, declared, asked.raw, weak)
    return hits, declines, declines and rules.opener.match(text) is None


def judge(
    draft: str, query: str | None, declared_refusal: bool | None, rules: RuleSet
) -> tuple[Normalized, Asked, list[Hit], bool, bool]:
    """The normalised draft and query, the rule hits, whether it is a refusal, whether it opens wrongly."""
    norm = normalize(draft, rules.max_run)
    asked = Asked(rules, query)
    hits, declines, bad_opener = _outcome(rules, norm.text, asked, declared_refusal)
    return norm, asked, hits, declines, bad_opener


def spans(draft: str, query: str | None, rules: RuleSet) -> tuple[bool, list[tuple[str, int, int, str]]]:
    """Whether ``draft`` is a refusal and its findings as (rule, start, end, text), with no fix and no
    messages: what an audit counts (the same findings as :func:`evaluate`, cheaper)."""
    norm, _, hits, declines, bad_opener = judge(draft, query, None, rules)
    out = []
    for rule, start, end in hits:
        a, b = norm.cover(start, end)
        out.append((rule, a, b, draft[a:b]))
    if bad_opener:
        a, b = refusal.opener_span(rules, norm)
        out.append((REFUSAL_RULE, a, b, draft[a:b]))
    if len(out) > 1:
        out.sort(key=lambda f: (f[1], f[2], f[0]))
    return declines, out


def evaluate(
    draft: str,
    query: str | None,
    declared_refusal: bool | None,
    rules: RuleSet,
    *,
    with_fix: bool = True,
) -> Verdict:
    """Check ``draft`` against every rule; offer a safe fix when one exists and ``with_fix``."""
    norm, asked, hits, declines, bad_opener = judge(draft, query, declared_refusal, rules)
    if not hits and not bad_opener:
        return Verdict(ok=True, is_refusal=declines, findings=[], fixed=None)
    fixed: str | None = None
    missing: set[Hit] = set()
    if with_fix:
        recheck_as = True if declines else declared_refusal

        def passes(edited: str) -> bool:
            again, _, again_bad_opener = _outcome(rules, edited, asked, recheck_as)
            return not again and not again_bad_opener

        flagged: dict[str, list[tuple[int, int]]] = {}
        for rule, start, end in hits:
            flagged.setdefault(rule, []).append((start, end))
        fixed, left = fixes.propose(rules, norm, flagged, bad_opener, passes)
        missing = set(left)
    note = rules.manual_fix
    findings = [
        _finding(rules, hit[0], norm.cover(hit[1], hit[2]), draft, note if hit in missing else "") for hit in hits
    ]
    if bad_opener:
        findings.append(_finding(rules, REFUSAL_RULE, refusal.opener_span(rules, norm), draft))
    if len(findings) > 1:
        findings.sort(key=lambda f: (f.start, f.end, f.rule))
    return Verdict(ok=False, is_refusal=declines, findings=findings, fixed=fixed)
