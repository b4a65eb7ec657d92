"""Does a draft decline (or fail to grant) what was asked, and does it open as a refusal must?

A draft is a refusal when the drafter declares it one; otherwise it reads the question: a draft
that opens by granting (可以的, 好的, 有的 ...) is none; given the customer's query, an intent the
query asks about decides (the draft's declining wording for it makes a refusal, its granting
wording an answer); an unanswered draft with a refusal cue (``refusal.cues`` of tone_rules.yaml,
or a negative-language finding, found by the same scan as the rules) is one.
A refusal's first sentence must open with the apology (非常抱歉), after an optional greeting.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from agent.guardrails.rules import Intent, RuleSet
from agent.text import Normalized, normalize

ASKED_CACHE = 4096  # queries whose intents (and matching form) each RuleSet remembers


def _asked(rules: RuleSet, query: str) -> tuple[tuple[Intent, ...], str]:
    """The intents ``query`` (as given) asks about and its matching form, from the rules' cache."""
    cache = rules.asked
    found = cache.get(query)
    if found is None:
        text = normalize(query, rules.max_run).text
        intents: tuple[Intent, ...] = ()
        if text and rules.intent_query is not None and rules.intent_query.search(text):
            intents = tuple(intent for intent in rules.intents if intent.query.search(text) is not None)
        if len(cache) >= ASKED_CACHE:
            cache.clear()
        found = cache[query] = (intents, text)
    return found


def asked_intents(rules: RuleSet, query: str) -> tuple[Intent, ...]:
    """The intents whose question the customer's ``query`` (as given) asks, in the rules' order.

    Cached per RuleSet and query: a query is checked against several drafts (a draft, its fix)."""
    return _asked(rules, query)[0]


def asked_text(rules: RuleSet, query: str) -> str:
    """The matching form of the customer's ``query``, normalised once per query (cached with its intents)."""
    return _asked(rules, query)[1]


def is_refusal(
    rules: RuleSet,
    draft: str,
    cue: bool,
    asked: Callable[[], tuple[Intent, ...]],
    declared: bool | None,
    query: str | None = None,
    weak: bool = False,
) -> bool:
    """Whether ``draft`` declines or fails what the customer asked (``draft`` normalised; ``asked``
    gives the intents the query asks about, read only when needed).

    In order: a declared refusal is one; a draft that opens by granting (``refusal.grants``:
    可以的, 好的, 有的 ..., after the greeting) is none, whatever condition, cost or negative
    wording follows; with the customer's query, an intent whose question it asks decides when
    the draft declines it (``declines``, even beside granting words: 满280有小礼物 to a request
    for a hat); an intent the draft answers (``grants``) outweighs a cue; otherwise a refusal
    cue (``cue``, found by the scan) makes it one; and a draft none of that decides is one when
    the rules' learned model (``refusal.model``) reads it as declining ``query`` (as given).
    A finding of a rule in ``refusal.rules_as_cues`` (``weak``: 我们不能…, 做不到) is a weaker sign:
    with the query and the model, the model decides (我们不能保证具体哪天 inside an answer to 多久能到
    is negative language, not a refusal); without them it makes the draft one, as a cue does.
    A drafter that declares a draft no refusal is believed unless the draft shows a cue; then the
    query decides as for an undeclared draft (the eval re-checks a pipeline draft with its final
    is_refusal, and must reach the verdict the pipeline reached with the same query).
    """
    if declared:
        return True
    if declared is False and not (cue or weak):
        return False
    if rules.grant_opener is not None and rules.grant_opener.match(draft) is not None:
        return False
    answered = False
    for intent in asked() if rules.intent_query is not None else ():
        if intent.declines is not None and intent.declines.search(draft) is not None:
            return True
        answered = answered or (intent.grants is not None and granted(rules, intent.grants, draft))
    if cue or answered:
        return cue and not answered
    model = rules.refusal_model
    if model is None or not query or declared is not None or rules.opener.match(draft) is not None:
        return weak  # a draft opening with the apology is not asked: it would need nothing more
    return model.declines(draft, query, lambda q: asked_text(rules, q))


def granted(rules: RuleSet, grants: re.Pattern[str], draft: str) -> bool:
    """Whether ``grants`` matches ``draft`` somewhere not right after a negator (不能给您便宜 grants
    nothing). Checked per match rather than by lookbehinds in the regex, which would cost the
    regex engine its fast scan for the pattern's first characters."""
    negators = rules.negators
    reach = len(negators[-1]) if negators else 0
    for match in grants.finditer(draft):
        start = match.start()
        if not negators or not draft[max(0, start - reach) : start].endswith(negators):
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
