"""Safe fixes: rewrite only the spans the rules flagged, then prove the result is better.

:func:`propose` builds edits from the fix table of tone_rules.yaml (each entry's regex is
run over the normalised draft and used only where it overlaps a finding of its rule) and,
for a refusal that opens wrongly, the apology (replacing a weak opener, else inserted after
the greeting). The edited text is offered only when ``recheck`` says it passes every rule and
it keeps the facts of the original: numbers, courier names and time words, counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from agent.guardrails.rules import RuleSet
from agent.text import Normalized, has_traditional, normalize, to_traditional

Edit = tuple[int, int, str]  # original start, original end, replacement


def facts(rules: RuleSet, text: str) -> Counter[str]:
    """The numbers, couriers and time words of ``text``, counted."""
    return Counter(rules.facts.findall(normalize(text, rules.max_run).text))


def table_edits(rules: RuleSet, norm: Normalized, flagged: dict[str, list[tuple[int, int]]]) -> list[Edit]:
    """Edits from the fix table, each where its regex overlaps a finding of its rule."""
    edits = []
    for fix in rules.fixes:
        spans = flagged.get(fix.rule)
        if not spans:
            continue
        for match in fix.pattern.finditer(norm.text):
            start, end = match.span()
            if end > start and any(start < e and s < end for s, e in spans):
                edits.append((*norm.cover(start, end), fix.replace))
    return edits


def opener_edit(rules: RuleSet, norm: Normalized) -> Edit:
    """Replace a weak opener with the apology, or insert the apology after the greeting."""
    weak = rules.weak_opener.match(norm.text)
    if weak is not None:
        return (*norm.span(weak.start(1), weak.end(1)), rules.apology)
    greeting = rules.greeting.match(norm.text)
    end = greeting.end() if greeting is not None else 0
    position = norm.position(end)
    prefix = rules.fix_prefix
    if end > 0 and norm.text[end - 1] not in rules.marks:
        prefix = rules.greeting_mark + prefix
    return position, position, prefix


def apply(text: str, edits: Iterable[Edit], traditional: bool) -> str:
    """Apply non-overlapping edits (the first of two overlapping ones wins)."""
    parts: list[str] = []
    pos = 0
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1])):
        if start < pos:
            continue
        parts.append(text[pos:start])
        parts.append(to_traditional(replacement) if traditional and replacement else replacement)
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def covered(flagged: dict[str, list[tuple[int, int]]], norm: Normalized, edits: list[Edit]) -> bool:
    """Whether every flagged span is touched by some edit (else the fix cannot clear it)."""
    spans = [norm.cover(s, e) for found in flagged.values() for s, e in found]
    return all(any(s < e2 and s2 < e for s2, e2, _ in edits) for s, e in spans)


def propose(
    rules: RuleSet,
    norm: Normalized,
    flagged: dict[str, list[tuple[int, int]]],
    fix_opener: bool,
    recheck: Callable[[str], bool],
) -> str | None:
    """A fixed draft, or None when no safe fix exists.

    ``flagged`` maps each lexical rule to its findings' spans in the normalised text;
    ``fix_opener`` asks for the refusal opener; ``recheck`` says whether a text passes all rules.
    """
    edits = table_edits(rules, norm, flagged)
    if not covered(flagged, norm, edits):
        return None
    original = norm.original
    traditional = has_traditional(original)
    fixed = apply(original, edits, traditional)
    if fix_opener:  # on the edited text, so that the greeting it keeps is the one it ends up with
        edited = normalize(fixed, rules.max_run)
        if rules.opener.match(edited.text) is None:
            fixed = apply(fixed, [opener_edit(rules, edited)], traditional)
    if fixed == original or not recheck(fixed):
        return None
    return fixed if facts(rules, fixed) == facts(rules, original) else None
