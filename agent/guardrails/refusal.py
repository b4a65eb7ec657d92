"""Does a draft decline (or fail to grant) what was asked, and does it open as a refusal must?

A draft is a refusal when the drafter declares it one, when its text shows a refusal cue
(``refusal.cues`` of tone_rules.yaml, found by the same scan as the rules), or, when the
customer's query is given and the drafter did not declare otherwise, when the query asks for
something a known intent covers and the draft answers with that intent's declining wording.
A refusal's first sentence must open with the apology (非常抱歉), after an optional greeting.
"""

from __future__ import annotations

import re

from agent.guardrails.rules import RuleSet
from agent.text import Normalized, normalize


def is_refusal(rules: RuleSet, draft: str, cue: bool, query: str | None, declared: bool | None) -> bool:
    """``draft`` is the normalised draft; ``cue`` says whether the scan found a refusal cue in it."""
    if declared or cue:
        return True
    if declared is False or not query or not rules.intents:
        return False
    asked = normalize(query, rules.max_run).text
    for intent in rules.intents:
        if intent.query.search(asked) is None or intent.declines.search(draft) is None:
            continue
        if intent.grants is None or intent.grants.search(draft) is None:
            return True
    return False


def opens_with_apology(rules: RuleSet, norm: Normalized) -> bool:
    """Whether the first sentence opens with the apology, after an optional greeting."""
    return rules.opener.match(norm.text) is not None


def opener_span(rules: RuleSet, norm: Normalized) -> tuple[int, int]:
    """What to report for a refusal that opens wrongly, as an original span.

    The weak opener (很抱歉, 不好意思 ...) when the draft starts with one, otherwise the whole
    first sentence.
    """
    weak = rules.weak_opener.match(norm.text)
    if weak is not None:
        return norm.span(weak.start(1), weak.end(1))
    return first_sentence(norm.original)


_FIRST_SENTENCE = re.compile(r"\s*([^。！？!?；;\n]*[。！？!?；;\n]*)")


def first_sentence(text: str) -> tuple[int, int]:
    """The span of the first sentence (with its end marks), without the spaces around it."""
    match = _FIRST_SENTENCE.match(text)
    start = match.start(1) if match is not None else 0
    end = match.end(1) if match is not None else len(text)
    return start, start + len(text[start:end].rstrip())
