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


def facts(rules: RuleSet, normalised: str) -> Counter[str]:
    """The numbers, couriers and time words of a normalised text, counted."""
    return Counter(rules.facts.findall(normalised))


def table_edits(rules: RuleSet, norm: Normalized, flagged: dict[str, list[tuple[int, int]]]) -> list[Edit] | None:
    """Per finding, the first fix-table match of its rule that overlaps it.

    Only the text around each finding is searched (fix entries are short phrases). None when a
    finding has no overlapping entry: then the table cannot clear it.
    """
    edits: list[Edit] = []
    text = norm.text
    reach = 2 * rules.window
    for rule, spans in flagged.items():
        table = rules.fixes.get(rule)
        if table is None:
            return None
        done = -1  # the end of the last edit: a finding inside it is already fixed
        for start, end in sorted(spans):
            if end <= done:
                continue
            match = table.pattern.search(text, max(0, start - reach), end + reach)
            while match is not None and match.start() < end and match.end() <= start:
                match = table.pattern.search(text, match.end(), end + reach)
            if match is None or match.start() >= end:
                return None
            done = match.end()
            edits.append((*norm.cover(*match.span()), table.replacements[str(match.lastgroup)]))
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


def propose(
    rules: RuleSet,
    norm: Normalized,
    flagged: dict[str, list[tuple[int, int]]],
    fix_opener: bool,
    passes: Callable[[Normalized], bool],
) -> str | None:
    """A fixed draft, or None when no safe fix exists.

    ``flagged`` maps each lexical rule to its findings' spans in the normalised text;
    ``fix_opener`` asks for the refusal opener; ``passes`` says whether a (normalised) text
    passes every rule.
    """
    edits = table_edits(rules, norm, flagged)
    if edits is None:
        return None
    original = norm.original
    traditional = has_traditional(original)
    fixed = apply(original, edits, traditional)
    edited = normalize(fixed, rules.max_run)
    if fix_opener and rules.opener.match(edited.text) is None:
        # On the edited text, so that the greeting it keeps is the one it ends up with.
        fixed = apply(fixed, [opener_edit(rules, edited)], traditional)
        edited = normalize(fixed, rules.max_run)
    if fixed == original or not passes(edited):
        return None
    return fixed if facts(rules, edited.text) == facts(rules, norm.text) else None
