"""The offline drafting backend: a reply composed, sentence by sentence, from the scripts that fit.

It never writes a fact that no script holds. Per question it takes the best script that fits
(:mod:`agent.drafting.fit`: a calibrated model of "answers this question") and that asserts no
order state the order or the message does not establish (已经看到您支付成功了 needs a paid order).
From each chosen script it takes the sentences; a clause whose fact an earlier part already said
is dropped, so a fact is said once; the draft opens once, apologises once (a declining answer
comes first, so a refusal opens with 非常抱歉), and closes once. Shop variables are filled. When
nothing fits it hands over to a colleague and marks the draft for review. Wording and thresholds
live in ``corpus/composer.yaml``; the composer is built from that data and reads no file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.config import BACKENDS_DEFAULT
from agent.corpus import fill
from agent.datafile import load, regex_problem
from agent.drafting.base import Candidate, Grounding, Proposal
from agent.drafting.clock import AfterCutoff
from agent.drafting.fit import FitModel, fit_probability, question_key
from agent.drafting.sentences import content, strip_prefix
from agent.drafting.writing import compose
from agent.types import Script

if TYPE_CHECKING:
    from agent.guardrails import RuleSet

_JOINED = re.compile(r"\S[\s，,]+\S")  # a question that still holds two pieces (发的什么快递啊 能发顺丰吗)

State = Literal[
    "paid",
    "shipped",
    "delivered",
    "out_of_stock",
    "price_changed",
    "remote",
    "window_passed",
    "received",
    "bargains",
    "personal",
    "others_data",
    "off_platform",
    "faded",
    "fee_disputed",
    "internal_asked",
    "tags_off",
    "regular",
    "round_down",
    "refund_refused",
    "charged_twice",
    "review_threat",
    "defect",
]


class Topic(BaseModel):
    """A conversation topic the earlier turns set (开线 -> a quality problem): which scripts it prefers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cues: list[str] = Field(min_length=1)
    prefer: list[str] = Field(default_factory=list)
    avoid: list[str] = Field(default_factory=list)


class AskOnce(BaseModel):
    """What a draft asks the customer for once (订单号): once a clause has asked it, later clauses
    lose the words that ask it again (请把情况和订单号告诉我 -> 请把情况告诉我), and a clause that
    only asks it again (请发订单号) goes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    word: str = Field(min_length=1)
    drop: list[str] = Field(default_factory=list)
    alone: list[str] = Field(default_factory=list)


class ComposerStyle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    openers: list[str]
    open_with: str
    address_words: list[str] = Field(default_factory=list)
    say_once: list[str] = Field(default_factory=list)
    apology_tails: list[str] = Field(default_factory=list)
    standalone_only: list[str] = Field(default_factory=list)
    lead_with: list[str] = Field(default_factory=list)
    briefs: Literal["none", "later", "all"] = "none"
    close_with: str = ""
    closers: list[str] = Field(default_factory=list)
    no_closer: list[str] = Field(default_factory=list)
    handoff: str
    min_coverage: float = Field(ge=0, le=1)
    min_shared_run: int = Field(ge=1)
    agree_rank: int = Field(default=1, ge=0)
    repeat_min_run: int = Field(default=8, ge=2)
    # A clause repeating a shorter run than that (另补15元, 寄回运费您承担) is dropped too when it
    # states no number the draft has not said (0: off).
    repeat_short_run: int = Field(default=0, ge=0)
    # An answer takes its reply's sentences in order until it holds this many characters
    # (letters, digits, CJK): the first answer of a draft, and each later one.
    first_answer_chars: int = Field(default=1000, ge=1)
    extra_answer_chars: int = Field(default=1000, ge=1)
    relevant_bigrams: int = Field(default=2, ge=1)
    # Beside other answers, an answer past this many characters keeps only clauses with a number,
    # a fact word or this many character pairs of its question (0: every clause).
    several_clause_chars: int = Field(default=0, ge=0)
    # A shop value the draft has named, named again by a short reference: {remote_areas: 这几个地区}.
    refer_again: dict[str, str] = Field(default_factory=dict)
    fact_words: list[str] = Field(default_factory=list)
    several_relevant_bigrams: int = Field(default=2, ge=1)
    # A clause whose character pairs were already said at this share (a paraphrase of an earlier
    # answer: 运费全国统一20元 after EMS全国统一20元) is dropped; 1.0 keeps every such clause.
    repeat_overlap: float = Field(default=1.0, gt=0, le=1)
    # Scripts whose reply states an order state, and what establishes each state.
    asserts: dict[str, list[State]] = Field(default_factory=dict)
    # A script whose state is not established gives way to its neutral script when that was
    # retrieved for the question too (下午三点前付款能当天发吗: the cutoff rule, not "too late").
    neutral: dict[str, list[str]] = Field(default_factory=dict)
    state_cues: dict[State, list[str]] = Field(default_factory=dict)
    state_orders: dict[State, list[str]] = Field(default_factory=dict)
    fit: FitModel | None = None
    # Topics set by the customer's earlier turns: a follow-up is answered within them.
    topics: list[Topic] = Field(default_factory=list)
    # Regular expressions for what a draft claims (amounts, discounts, dates, times, promised
    # days): agent.drafting.grounding checks each against the cited scripts, shop and order.
    claims: list[str] = Field(default_factory=list)
    # A question this short that no script surely answers, right after an answered one, is read
    # with it (能发顺丰吗 要加多少钱): the earlier answer covers it.
    followon_chars: int = Field(default=0, ge=0)
    tie_ratio: float = Field(default=0.0, ge=0, le=1)  # runner-up score / best score that counts as a tie
    followon_fit: float = Field(default=0.0, ge=0, le=1)  # the fit such a question needs to stand alone
    # A script below the fit model's operating point but at or above this probability still
    # answers in the draft, which then goes to review: the agent edits rather than writes.
    use_threshold: float = Field(default=1.0, ge=0, le=1)
    after_cutoff: AfterCutoff | None = None
    ask_once: list[AskOnce] = Field(default_factory=list)

    @model_validator(mode="after")
    def _patterns_compile(self) -> ComposerStyle:
        """Every regular expression it holds compiles (state cues, topic cues, claims, after_cutoff)."""
        late = self.after_cutoff
        groups = [*self.state_cues.values(), *(t.cues for t in self.topics), self.claims]
        problem = regex_problem([p for g in groups for p in g] + ([*late.today, *late.paying] if late else []))
        if problem is not None:
            raise ValueError(problem)
        return self


def load_style(corpus_dir: Path) -> ComposerStyle:
    return load(corpus_dir / "composer.yaml", ComposerStyle)


def fits(
    question: str,
    candidates: Sequence[Candidate],
    rank: int,
    style: ComposerStyle,
    usable: bool = False,
    strict: bool = False,
) -> bool:
    """Whether ``candidate`` answers ``question``: the fit model's probability at its operating point.

    Without a trained model (a workspace that has none yet) the rule of old: both retrievers rank
    the script first, or the question shares enough wording with one of its variants.
    """
    candidate = candidates[rank]
    if candidate.emergency:
        return True
    model = style.fit
    if model is not None:
        if usable and candidate.bm25_rank is None:
            return False  # below the operating point, a script must at least share words with the question
        cut = style.use_threshold if usable else max(model.threshold, style.followon_fit if strict else 0.0)
        return fit_probability(model, question, candidates, rank) >= cut
    ranks = (candidate.dense_rank, candidate.bm25_rank)
    if all(r is not None and r <= style.agree_rank for r in ranks):
        return True
    from agent.drafting.fit import wording

    coverage, run, exact = wording(question, candidate.script)
    q = question_key(question)
    return bool(q) and (exact or coverage >= style.min_coverage or run >= min(style.min_shared_run, len(q)))


def established_states(grounding: Grounding, style: ComposerStyle) -> set[str]:
    """The states (paid, delivered, a remote area, …) the order or the customer's own words establish."""
    states: set[str] = set()
    order = grounding.order
    if order is not None and order.status is not None:
        states |= {s for s, statuses in style.state_orders.items() if order.status in statuses}
    said = [grounding.message, *(t.text for t in grounding.turns if t.role == "customer")]
    if order is not None and order.region:
        said.append(order.region)  # where the order goes (寄到新疆 without the customer saying so)
    for state, cues in style.state_cues.items():
        if any(re.search(cue, text) for cue in cues for text in said):
            states.add(state)
    return states


@dataclass(frozen=True)
class ScriptComposer:
    """Backend ``script``: composes from the scripts, offline, deterministic.

    Built from the workspace's data (``ScriptComposer(workspace.style, workspace.tone)``); it
    reads no file.
    """

    style: ComposerStyle
    rules: RuleSet
    name: str = BACKENDS_DEFAULT

    def draft(self, grounding: Grounding) -> Proposal:
        style = self.style
        leads, answers, unanswered, skipped = choose(grounding, style)
        chosen = leads + answers
        asked_by = _questions_by_script(grounding, chosen)
        notes = [f"{sid}: asserts a state (order, message) does not establish" for sid in skipped]
        if not chosen:
            return Proposal(style.handoff, is_refusal=False, needs_review=True, notes=["no script fits", *notes])
        values = grounding.values()
        known = grounding.order_known
        replies = [_answer(c.script, n, len(answers), style, values, known) for n, c in enumerate(answers)]
        late, too_late = style.after_cutoff, False
        if late is not None and late.applies(grounding.message, values.get("cutoff_time")):
            # A ship-time answer to someone who paid after the cutoff and asks about today: the decline.
            too_late = any(c.script.id in late.scripts for c in answers)
            replies = [late.reply if c.script.id in late.scripts else r for c, r in zip(answers, replies, strict=True)]
        asked = [asked_by.get(c.script.id, "") for c in answers]
        lead = "".join(fill(strip_prefix(c.script.brief or c.script.reply, style.openers), values) for c in leads)
        text = compose(replies, style, closing=_closes(chosen, style), questions=asked, values=values, lead=lead)
        if unanswered:
            notes.append(f"{unanswered} question(s) without a script sure to fit")
        return Proposal(
            text=text,
            is_refusal=True if too_late or any(_declines(c.script, values, known) for c in chosen) else None,
            cited_ids=[c.script.id for c in chosen],
            needs_review=unanswered > 0,
            notes=notes,
        )


def _declines(script: Script, values: dict[str, str], known: bool) -> bool:
    variant = script.spoken(values, known)
    return script.declines or (variant is not None and variant.declines)


def _answer(script: Script, n: int, answers: int, style: ComposerStyle, values: dict[str, str], known: bool) -> str:
    """The text an answer starts from: the script's reply, or beside other answers its brief (its
    ``with_order`` words when the order is known and fills them)."""
    variant = script.spoken(values, known)
    reply, brief = (variant.reply, variant.brief) if variant is not None else (script.reply, script.brief)
    several = answers > 1 and (style.briefs == "all" or (style.briefs == "later" and n > 0))
    return brief if several and brief else reply


def _near_tie(candidates: Sequence[Candidate], best: Candidate, style: ComposerStyle) -> Candidate | None:
    """The runner-up when both retrievers rank it right behind ``best`` at nearly its score.

    Asked only of a question that still holds two pieces the splitter left together.
    """
    if style.tie_ratio <= 0 or len(candidates) < 2 or candidates[0] is not best:
        return None
    second = candidates[1]
    both_second = second.dense_rank == 2 and second.bm25_rank == 2
    close = best.score > 0 and second.score / best.score >= style.tie_ratio
    same_kind = second.script.category == best.script.category and not second.script.declines
    return second if both_second and close and same_kind else None


def _topic_scripts(grounding: Grounding, style: ComposerStyle) -> tuple[set[str], set[str]]:
    """Scripts the conversation's earlier turns make preferred, and those they rule out."""
    earlier = " ".join(t.text for t in grounding.turns if t.role == "customer")
    prefer: set[str] = set()
    avoid: set[str] = set()
    for topic in style.topics:
        if earlier and any(re.search(cue, earlier) for cue in topic.cues):
            prefer.update(topic.prefer)
            avoid.update(topic.avoid)
    return prefer, avoid


def _questions_by_script(grounding: Grounding, chosen: list[Candidate]) -> dict[str, str]:
    """The customer's words each chosen script answers (every question that retrieved it)."""
    ids = {c.script.id for c in chosen}
    out: dict[str, str] = {}
    for question in grounding.questions:
        for cand in question.candidates:
            if cand.script.id in ids:
                out[cand.script.id] = out.get(cand.script.id, "") + " " + question.text
    return out


def _closes(chosen: list[Candidate], style: ComposerStyle) -> bool:
    return len(chosen) > 1 and bool(style.close_with) and chosen[-1].script.category not in style.no_closer


def choose(grounding: Grounding, style: ComposerStyle) -> tuple[list[Candidate], list[Candidate], int, list[str]]:
    """The best fitting, state-true script per question: the leads (a greeting's brief, 在的！, before
    the answers) and the answers; questions without a sure fit; scripts skipped.

    A question whose best script is only usable (below the operating point) still gets it and
    counts as unsure, so the draft goes to review.
    """
    states = established_states(grounding, style)
    picked: dict[str, Candidate] = {}
    skipped: list[str] = []
    unsure = 0
    previous_answered = previous_sure = False
    prefer, avoid = _topic_scripts(grounding, style)
    for question in grounding.questions:
        best, sure = None, False
        preferred = [
            c
            for c in question.candidates
            if c.script.id in prefer and not set(style.asserts.get(c.script.id, ())) - states
        ]
        if preferred:
            best, sure = preferred[0], True
        followon = previous_sure and len(content(question.text)) <= style.followon_chars
        joined = bool(_JOINED.search(question.text.strip()))
        for usable in (False, True) if best is None else ():
            for rank, cand in enumerate(question.candidates):
                if cand.script.id in avoid:
                    continue
                # A follow-on, or a question still holding two pieces, must fit well to be sure.
                if not fits(question.text, question.candidates, rank, style, usable, strict=followon or joined):
                    continue
                if set(style.asserts.get(cand.script.id, ())) - states:
                    skipped.append(cand.script.id)
                    alt = _neutral(question.candidates, cand, style, states, avoid)
                    if alt is None:
                        continue
                    cand = alt
                best, sure = cand, not usable
                break
            if best is not None or style.fit is None:
                break
        # A context piece (寄到杭州), or a short follow-on (要加多少钱) no script surely answers,
        # after an answered question needs no answer of its own.
        context = (question.context or (followon and not sure)) and previous_answered
        if best is not None and not (context and not sure):
            picked.setdefault(best.script.id, best)
            second = _near_tie(question.candidates, best, style) if joined else None
            if second is not None and not set(style.asserts.get(second.script.id, ())) - states:
                # Two scripts nearly tie: the question may ask both (发的什么快递啊 能发顺丰吗).
                picked.setdefault(second.script.id, second)
                sure = False
        if not sure and not context:
            unsure += 1
        previous_answered = best is not None or context
        previous_sure = sure and best is not None and best.script.category not in style.standalone_only
    chosen = list(picked.values())
    answers = [c for c in chosen if c.script.category not in style.standalone_only] or chosen
    # Beside answers, a standalone-only script of `lead_with` says its brief (在的), the others
    # nothing; nothing before a declining answer, whose first sentence opens with the apology.
    declines = any(c.script.declines for c in answers)
    leads = [] if declines else [c for c in chosen if c not in answers and c.script.id in style.lead_with][:1]
    # Declining answers first: a draft that declines anything opens with the apology.
    return leads, sorted(answers, key=lambda c: not c.script.declines), unsure, list(dict.fromkeys(skipped))


def _neutral(
    candidates: Sequence[Candidate], skipped: Candidate, style: ComposerStyle, states: set[str], avoid: set[str]
) -> Candidate | None:
    """The first retrieved, state-true neutral script (``neutral`` of composer.yaml) for ``skipped``."""
    by_id = {c.script.id: c for c in candidates}
    for sid in style.neutral.get(skipped.script.id, ()):
        if sid in by_id and sid not in avoid and not set(style.asserts.get(sid, ())) - states:
            return by_id[sid]
    return None
