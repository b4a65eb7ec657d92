"""``ok`` is a promise: what a draft states must come from a cited script, the shop or the order.

After the guard loop the pipeline asks, for any backend:

- every cited id was retrieved for this message; one that was not is dropped and flagged
  (``uncited_source``);
- every claim in the text (a number with its unit, a discount, a date or time, a promise of a
  day: the ``claims`` patterns of ``corpus/composer.yaml``) is found in a cited script's filled
  reply, the shop's values or the order; one that is not is an ``unsupported_claim`` finding at
  its span (五折, 明天一定到);
- for a backend other than the composer (which decides fit itself), every question has a cited
  script that the fit model accepts for it.

Any of these makes the draft ``needs_review``. Matching is on the matching form with Chinese
numerals read as digits (十五元 = 15元).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from agent.corpus import fill
from agent.drafting.base import Grounding, Proposal
from agent.drafting.composer import ComposerStyle, fits
from agent.evaluation.numerals import to_arabic
from agent.text import normalize
from agent.types import Finding

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


@dataclass
class GroundingCheck:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def _form(text: str) -> str:
    return _NON_WORD.sub("", to_arabic(normalize(text)).text)


def sources(grounding: Grounding, cited: Iterable[str]) -> list[str]:
    """Everything a draft may state: the cited scripts' filled replies, the shop's values, the order."""
    values = grounding.values()
    by_id = {c.script.id: c.script for c in grounding.scripts()}
    texts = []
    for sid in cited:
        script = by_id.get(sid)
        if script is None:
            continue
        texts.append(fill(script.reply, values))
        if grounding.order_known and script.with_order is not None:  # what it says with the order
            texts.append(fill(script.with_order.reply, values))
    texts.extend(values.values())
    texts.append(grounding.message)  # an amount the customer gave (实际付的是320) may be repeated
    return texts


def unsupported_claims(text: str, patterns: Iterable[str], known: Iterable[str]) -> list[Finding]:
    """A finding at each claim of ``text`` that no source holds."""
    pool = "\n".join(_form(t) for t in known)
    findings: list[Finding] = []
    taken: list[tuple[int, int]] = []
    for pattern in patterns:
        for match in re.finditer(pattern, text):
            start, end = match.span()
            if any(s < end and start < e for s, e in taken):
                continue
            claim = _form(match.group(0))
            if claim and claim not in pool:
                taken.append((start, end))
                findings.append(
                    Finding(
                        rule="unsupported_claim",
                        start=start,
                        end=end,
                        text=match.group(0),
                        message=f"no cited script, shop fact or order states {match.group(0)!r}",
                    )
                )
    return sorted(findings, key=lambda f: f.start)


def check_grounding(
    grounding: Grounding, proposal: Proposal, style: ComposerStyle, decides_fit: bool
) -> GroundingCheck:
    """Drop cited ids that were not retrieved, then check claims and (unless ``decides_fit``) fit."""
    result = GroundingCheck()
    retrieved = {c.script.id for c in grounding.scripts()}
    stray = [sid for sid in proposal.cited_ids if sid not in retrieved]
    if stray:
        proposal.cited_ids = [sid for sid in proposal.cited_ids if sid in retrieved]
        result.notes.append(f"cited ids not retrieved, dropped: {', '.join(stray)}")
        result.findings.extend(
            Finding(rule="uncited_source", start=0, end=0, text=sid, message=f"{sid} was not retrieved")
            for sid in stray
        )
    result.findings.extend(unsupported_claims(proposal.text, style.claims, sources(grounding, proposal.cited_ids)))
    if not decides_fit:
        cited = set(proposal.cited_ids)
        for question in grounding.questions:
            if question.context:
                continue
            ranks = [r for r, c in enumerate(question.candidates) if c.script.id in cited]
            if not any(fits(question.text, question.candidates, r, style) for r in ranks):
                result.notes.append(f"no cited script fits {question.text!r}")
                result.findings.append(
                    Finding(
                        rule="unsupported_claim",
                        start=0,
                        end=0,
                        text=question.text,
                        message="no cited script answers this question",
                    )
                )
    return result
