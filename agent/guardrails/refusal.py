"""Does a draft decline (or fail to grant) what was asked, and does it open as a refusal must?

A draft is a refusal when the drafter declares it one, when its text shows a refusal cue
(``refusal.cues`` of tone_rules.yaml, found by the same scan as the rules), or, when the
customer's query is given and the drafter did not declare otherwise, when the query asks for
something a known intent covers and the draft answers with that intent's declining wording.
A refusal's first sentence must open with the apology (非常抱歉), after an optional greeting.
"""

from __future__ import annotations

from agent.guardrails.rules import RuleSet
from agent.text import Normalized, normalize, sentences


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


def opener_problem(rules: RuleSet, norm: Normalized) -> tuple[int, int] | None:
    """None when the draft opens with the apology; else the original span to report.

    The span is the weak opener (很抱歉, 不好意思 ...) when the draft starts with one,
    otherwise the whole first sentence.
    """
    if rules.opener.match(norm.text) is not None:
        return None
    weak = rules.weak_opener.match(norm.text)
    if weak is not None:
        return norm.span(weak.start(1), weak.end(1))
    return first_sentence(norm.original)


def first_sentence(text: str) -> tuple[int, int]:
    """The span of the first sentence that holds anything but spaces, without its outer spaces."""
    for start, end in sentences(text):
        chunk = text[start:end]
        stripped = chunk.strip()
        if stripped:
            lead = len(chunk) - len(chunk.lstrip())
            return start + lead, start + lead + len(stripped)
    return 0, len(text)
