"""The offline drafting backend: a reply composed from the retrieved scripts alone.

It never writes a fact that no script holds. Per question it takes the best script that fits;
declining answers come first (so a refusal opens with the script's 非常抱歉); the address is
said once; shop variables are filled. When nothing fits it hands over to a colleague and marks
the draft for review. Wording lives in ``corpus/composer.yaml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from agent.corpus import fill
from agent.datafile import load
from agent.drafting.base import Candidate, Grounding, Proposal
from agent.text import normalize_query

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


class ComposerStyle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    openers: list[str]
    open_with: str
    address_words: list[str] = Field(default_factory=list)
    say_once: list[str] = Field(default_factory=list)
    standalone_only: list[str] = Field(default_factory=list)
    close_with: str = ""
    no_closer: list[str] = Field(default_factory=list)
    handoff: str
    min_coverage: float = Field(ge=0, le=1)
    min_shared_run: int = Field(ge=1)
    agree_rank: int = Field(default=1, ge=0)


def load_style(corpus_dir: Path) -> ComposerStyle:
    return load(corpus_dir / "composer.yaml", ComposerStyle)


def _key(text: str) -> str:
    return _NON_WORD.sub("", normalize_query(text))


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or ({text} if text else set())


def _longest_shared_run(a: str, b: str) -> int:
    best = 0
    for i in range(len(a)):
        for j in range(i + best + 1, len(a) + 1):
            if a[i:j] in b:
                best = j - i
            else:
                break
    return best


def _sources_agree(candidate: Candidate, style: ComposerStyle) -> bool:
    """Dense and BM25 retrieval each rank the script among their first ``agree_rank``."""
    ranks = (candidate.dense_rank, candidate.bm25_rank)
    return all(rank is not None and rank <= style.agree_rank for rank in ranks)


def fits(question: str, candidate: Candidate, style: ComposerStyle) -> bool:
    """Whether ``candidate`` answers ``question``.

    Dense scores only rank (related and unrelated pairs differ by hundredths), so the evidence is
    agreement: both retrievers put the script first, or the question shares enough wording with
    one of the script's variants.
    """
    if candidate.emergency or _sources_agree(candidate, style):
        return True
    q = _key(question)
    if not q:
        return False
    grams = _bigrams(q)
    for variant in (*candidate.script.questions, candidate.script.title):
        v = _key(variant)
        if not v:
            continue
        if q == v or len(grams & _bigrams(v)) / len(grams) >= style.min_coverage:
            return True
        if _longest_shared_run(q, v) >= min(style.min_shared_run, len(q)):
            return True
    return False


@dataclass(frozen=True)
class ScriptComposer:
    """Backend ``script``: composes from the scripts, offline, deterministic."""

    corpus_dir: Path
    name: str = "script"

    def draft(self, grounding: Grounding) -> Proposal:
        style = load_style(self.corpus_dir)
        chosen, unanswered = _choose(grounding, style)
        if not chosen:
            return Proposal(text=style.handoff, is_refusal=False, needs_review=True, notes=["no script fits"])
        values = {**grounding.shop.vars, **_order_values(grounding)}
        parts = [_strip_opener(fill(c.script.reply, values), style.openers) for c in chosen]
        parts = parts[:1] + [_strip_opener(p, style.say_once) for p in parts[1:]]
        first_clause = re.split(r"[，,。！？!?]", parts[0], maxsplit=1)[0]
        opener = "" if any(w in first_clause for w in style.address_words) else style.open_with
        text = opener + "".join(_as_sentence(p) for p in parts)
        if len(chosen) > 1 and style.close_with and chosen[-1].script.category not in style.no_closer:
            text += style.close_with
        return Proposal(
            text=text,
            is_refusal=any(c.script.declines for c in chosen),
            cited_ids=[c.script.id for c in chosen],
            needs_review=unanswered > 0,
            notes=[f"{unanswered} question(s) had no fitting script"] if unanswered else [],
        )


def _choose(grounding: Grounding, style: ComposerStyle) -> tuple[list[Candidate], int]:
    """The best fitting script per question, and how many questions got none."""
    picked: dict[str, Candidate] = {}
    unanswered = 0
    previous_answered = False
    for question in grounding.questions:
        best = next((c for c in question.candidates if fits(question.text, c, style)), None)
        # A context piece (寄到杭州) after an answered question needs no answer of its own.
        answered = best is not None or (question.context and previous_answered)
        if best is not None:
            picked.setdefault(best.script.id, best)
        elif not answered:
            unanswered += 1
        previous_answered = answered
    chosen = list(picked.values())
    substantive = [c for c in chosen if c.script.category not in style.standalone_only]
    if substantive:
        chosen = substantive
    # Declining answers first: a draft that declines anything opens with the apology.
    return sorted(chosen, key=lambda c: not c.script.declines), unanswered


def _order_values(grounding: Grounding) -> dict[str, str]:
    order = grounding.order
    if order is None:
        return {}
    values = {
        "order_courier": order.courier,
        "tracking_no": order.tracking_no,
        "order_region": order.region,
        "order_amount": f"{order.amount:g}元" if order.amount is not None else None,
    }
    return {k: v for k, v in values.items() if v}


def _strip_opener(text: str, openers: list[str]) -> str:
    text = text.strip()
    for opener in sorted(openers, key=len, reverse=True):
        if text.startswith(opener):
            return text[len(opener) :].lstrip()
    return text


def _as_sentence(text: str) -> str:
    return text if text.endswith(("。", "！", "？", "~", "～", ".", "!", "?")) else text + "。"
