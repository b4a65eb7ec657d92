"""Safe fixes: reword, drop or reorder only the spans the rules flagged, or add the apology opener.

:func:`propose` builds edits from the fix table of tone_rules.yaml (each entry's regex is run
over the normalised draft and used only where it overlaps a finding of its rule) and, for a
refusal that opens wrongly, the apology (replacing a weak opener, else inserted after the
greeting). A fix never adds a fact: the compiler refuses a replacement that holds one (a number,
a courier, a time word), and an edit that would remove one is not made. A finding that no
table entry covers needs a new claim to fix: it is returned as ``missing``, for the agent, and
then no fix is offered at all. The edited text is offered only when ``passes`` says it clears
every rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache

from agent.guardrails.rules import RuleSet
from agent.text import Normalized, has_traditional, normalize, to_traditional

Edit = tuple[int, int, str]  # original start, original end, replacement
Span = tuple[str, int, int]  # rule, normalised start, normalised end


def table_edits(
    rules: RuleSet, norm: Normalized, flagged: dict[str, list[tuple[int, int]]]
) -> tuple[list[Edit], list[Edit], list[Span]]:
    """Per finding, the first fix-table match of its rule that overlaps it, as an edit of the original
    and of the normalised text; and the findings with none.

    Only the text around each finding is searched (fix entries are short phrases). An entry
    whose match holds a fact (a number, a courier, a time word) is not used: the fix would drop it.
    """
    edits: list[Edit] = []
    normal: list[Edit] = []
    missing: list[Span] = []
    text = norm.text
    reach = 2 * rules.window
    facts = rules.facts
    for rule, spans in flagged.items():
        table = rules.fixes.get(rule)
        done = -1  # the end of the last edit: a finding inside it is already fixed
        for start, end in sorted(spans):
            if end <= done:
                continue
            if table is None:
                missing.append((rule, start, end))
                continue
            match = table.pattern.search(text, max(0, start - reach), end + reach)
            while match is not None and match.start() < end and match.end() <= start:
                match = table.pattern.search(text, match.end(), end + reach)
            if match is None or match.start() >= end or facts.search(text, match.start(), match.end()):
                missing.append((rule, start, end))
                continue
            done = match.end()
            replacement = table.replacements[str(match.lastgroup)]
            edits.append((*norm.cover(*match.span()), replacement))
            normal.append((*match.span(), _normal(replacement, rules.max_run)))
    return edits, normal, missing


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


@lru_cache(maxsize=64)
def _normal(literal: str, max_run: int) -> str:
    return normalize(literal, max_run).text


def _opening_end(rules: RuleSet, text: str) -> int:
    """Where the greeting (or the weak opener after it) ends: where the apology goes."""
    match = rules.weak_opener.match(text) or rules.greeting.match(text)
    return match.end() if match is not None else 0


def opened(rules: RuleSet, text: str) -> str:
    """The normalised ``text`` after :func:`opener_edit`, spliced rather than re-normalised."""
    weak = rules.weak_opener.match(text)
    if weak is not None:
        return text[: weak.start(1)] + _normal(rules.apology, rules.max_run) + text[weak.end(1) :]
    greeting = rules.greeting.match(text)
    end = greeting.end() if greeting is not None else 0
    prefix = rules.fix_prefix
    if end > 0 and text[end - 1] not in rules.marks:
        prefix = rules.greeting_mark + prefix
    return text[:end] + _normal(prefix, rules.max_run) + text[end:]


@lru_cache(maxsize=64)
def _traditional(replacement: str) -> str:
    return to_traditional(replacement)


def apply(text: str, edits: Iterable[Edit], traditional: bool) -> str:
    """Apply non-overlapping edits (the first of two overlapping ones wins)."""
    parts: list[str] = []
    pos = 0
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1])):
        if start < pos:
            continue
        parts.append(text[pos:start])
        parts.append(_traditional(replacement) if traditional and replacement else replacement)
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def propose(
    rules: RuleSet,
    norm: Normalized,
    flagged: dict[str, list[tuple[int, int]]],
    fix_opener: bool,
    passes: Callable[[str], bool],
) -> tuple[str | None, list[Span]]:
    """A fixed draft (None when no safe fix exists) and the findings left for the agent.

    ``flagged`` maps each lexical rule to its findings' spans in the normalised text;
    ``fix_opener`` asks for the refusal opener; ``passes`` says whether a normalised text passes
    every rule.
    """
    edits, normal, missing = table_edits(rules, norm, flagged)
    if missing:
        return None, missing
    original = norm.original
    traditional = has_traditional(original)
    if not edits:  # the apology opener alone: its normalised text is a splice, no second normalisation
        if not fix_opener or not passes(opened(rules, norm.text)):
            return None, []
        return apply(original, [opener_edit(rules, norm)], traditional), []
    edited_text = apply(norm.text, normal, False)  # the normalised edited text, spliced
    first = min(start for start, _, _ in normal)
    if fix_opener and rules.opener.match(edited_text) is None:
        if _opening_end(rules, edited_text) > first or _opening_end(rules, norm.text) != _opening_end(
            rules, edited_text
        ):
            # The edits reach into the greeting: place the opener on the edited text itself.
            fixed = apply(original, edits, traditional)
            edited = normalize(fixed, rules.max_run)
            fixed = apply(fixed, [opener_edit(rules, edited)], traditional)
            edited_text = opened(rules, edited.text)
        else:
            fixed = apply(original, [*edits, opener_edit(rules, norm)], traditional)
            edited_text = opened(rules, edited_text)
    else:
        fixed = apply(original, edits, traditional)
    if fixed == original or not passes(edited_text):
        return None, []
    return fixed, []
