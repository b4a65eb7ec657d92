"""``draft_reply``: a customer's message in, a checked draft out.

    sanitise -> retrieve (per question) -> draft (composer or LLM) -> guard loop -> Draft

The guard loop: check; apply the guardrail's safe fix; while findings remain and the backend
can revise, ask it (at most ``MAX_REVISIONS`` rounds); a draft that still has findings, or that
its backend marked, is returned as ``needs_review`` with its findings. Never ``ok`` with findings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.config import Settings, get_settings
from agent.context import contradicts, fits_explicitly, load_context_rules, retrieval_text
from agent.corpus import corpus_for, shop_for
from agent.drafting.base import Backend, Candidate, Grounding, Proposal, Question, Reviser
from agent.drafting.composer import ScriptComposer
from agent.emergency import EMERGENCY_PREFIX, EmergencyRule, active_match
from agent.errors import BackendError, EmptyMessageError, MessageTooLongError
from agent.guardrails import check
from agent.redact import load_redactor
from agent.retrieval import Hit, Retriever, retrieve_questions
from agent.retrieval.service import split_rules
from agent.text import sanitize
from agent.types import Citation, Conditions, Draft, Finding, Message, Order, Script, Source, Turn, Verdict

MAX_REVISIONS = 2
ORDER_FIT_BONUS = 1.15  # a script whose conditions name the order's status ranks a little higher


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Clock:
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = round(self.timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000, 3)


def prepare_message(text: str, settings: Settings) -> tuple[str, list[str]]:
    """The message a draft is made from: sanitised, checked for length; notes say what changed."""
    if len(text) > settings.reject_message_chars:
        raise MessageTooLongError(
            f"message is {len(text)} characters; the limit is {settings.reject_message_chars}"
            " (KEFU_REJECT_MESSAGE_CHARS)"
        )
    clean = sanitize(text)
    if not clean:
        raise EmptyMessageError("message is empty after removing control and invisible characters")
    notes = []
    if len(clean) > settings.max_message_chars:
        clean = clean[: settings.max_message_chars]
        notes.append(f"message truncated to its first {settings.max_message_chars} characters")
    return clean, notes


@dataclass
class Drafter:
    """Holds what drafting reuses between messages: settings, retriever, backends."""

    settings: Settings
    retriever_override: Retriever | None = None
    llm_override: Backend | None = None
    clock: Callable[[], datetime] = _utcnow
    _llm: Backend | None = None

    def retriever(self) -> Retriever:
        """The injected retriever, else the configured one (rebuilt only when the corpus changes)."""
        if self.retriever_override is not None:
            return self.retriever_override
        from agent.retrieval import get_retriever

        return get_retriever(self.settings)

    def llm(self) -> Backend:
        """The injected backend, else the OpenAI-compatible one, created once."""
        if self.llm_override is not None:
            return self.llm_override
        if self._llm is None:
            from agent.drafting.llm import OpenAIBackend

            self._llm = OpenAIBackend(self.settings)
        return self._llm

    def ground(self, message: Message, text: str) -> Grounding:
        """Per question, the candidate scripts: an active emergency rule, else retrieval fit to the order."""
        settings = self.settings
        corpus_dir = settings.corpus_dir
        scripts = corpus_for(corpus_dir).by_id()
        shop = shop_for(corpus_dir, message.shop)
        order = message.order
        platform = order.platform if order is not None and order.platform else shop.platform
        query = retrieval_text(text, message.turns, load_context_rules(corpus_dir))
        now = self.clock()
        questions = []
        found = retrieve_questions(query, settings.top_k, retriever=self.retriever(), settings=settings)
        rules = split_rules(settings)
        for n, (question, hits) in enumerate(found):
            context = n > 0 and rules.is_context(question)
            rule = active_match(corpus_dir, question, now)
            if rule is not None:
                questions.append(Question(question, (_emergency_candidate(rule, scripts),), context))
                continue
            cands = [
                _candidate(scripts[h.script_id], h, order)
                for h in hits
                if h.script_id in scripts and not contradicts(scripts[h.script_id], order, platform)
            ]
            cands.sort(key=lambda c: c.score, reverse=True)
            questions.append(Question(question, tuple(cands), context))
        return Grounding(message=text, questions=tuple(questions), shop=shop, order=order, turns=tuple(message.turns))

    def draft(self, message: Message, backend: str | None = None) -> Draft:
        settings = self.settings
        clock = _Clock()
        with clock("total"):
            with clock("prepare"):
                text, notes = prepare_message(message.text, settings)
                shop_for(settings.corpus_dir, message.shop)  # an unknown shop fails before any work
            with clock("retrieve"):
                grounding = self.ground(message, text)
            composer = ScriptComposer(settings.corpus_dir)
            chosen: Backend = composer
            fallback_reason = None
            with clock("draft"):
                if settings.resolved_backend(backend) == "openai":
                    try:
                        chosen = self.llm()
                        proposal = chosen.draft(grounding)
                    except BackendError as exc:
                        chosen, fallback_reason = composer, str(exc)
                        proposal = composer.draft(grounding)
                else:
                    proposal = composer.draft(grounding)
            with clock("guard"):
                proposal, verdict = self._guard(grounding, proposal, chosen, clock)
        return self._assemble(grounding, proposal, verdict, chosen, fallback_reason, notes, clock)

    def _guard(
        self, grounding: Grounding, proposal: Proposal, backend: Backend, clock: _Clock
    ) -> tuple[Proposal, Verdict]:
        proposal = self._redacted(grounding, proposal)
        best = (proposal, self._checked(grounding, proposal))
        rounds = 0
        while not best[1].ok and isinstance(backend, Reviser) and rounds < MAX_REVISIONS:
            rounds += 1
            with clock("revise"):
                try:
                    revision = backend.revise(grounding, best[0].text, best[1].findings)
                    revised = self._redacted(grounding, revision)
                except BackendError as exc:
                    best[0].notes.append(f"revision failed: {exc}")
                    break
            verdict = self._checked(grounding, revised)
            if len(verdict.findings) <= len(best[1].findings):
                best = (revised, verdict)
        return best

    def _checked(self, grounding: Grounding, proposal: Proposal) -> Verdict:
        verdict = check(proposal.text, query=grounding.message, declared_refusal=proposal.is_refusal)
        if not verdict.ok and verdict.fixed:
            fixed = check(verdict.fixed, query=grounding.message, declared_refusal=proposal.is_refusal)
            if fixed.ok:
                proposal.text = verdict.fixed
                proposal.notes.append("guardrail applied a safe fix")
                return fixed
        return verdict

    def _redacted(self, grounding: Grounding, proposal: Proposal) -> Proposal:
        redactor = load_redactor(self.settings.corpus_dir)
        kinds = redactor.found(grounding.message)
        if kinds:
            cleaned = redactor.redact(proposal.text)
            if cleaned != proposal.text:
                proposal.text = cleaned
                proposal.notes.append("personal data from the message removed from the draft")
        return proposal

    @staticmethod
    def _assemble(
        grounding: Grounding,
        proposal: Proposal,
        verdict: Verdict,
        backend: Backend,
        fallback_reason: str | None,
        notes: list[str],
        clock: _Clock,
    ) -> Draft:
        by_id = {c.script.id: c for c in grounding.scripts()}
        citations = [
            Citation(id=sid, category=by_id[sid].script.category, score=round(by_id[sid].score, 6))
            for sid in dict.fromkeys(proposal.cited_ids)
            if sid in by_id
        ]
        findings: list[Finding] = list(verdict.findings)
        ok = verdict.ok and not proposal.needs_review
        return Draft(
            text=proposal.text,
            is_refusal=verdict.is_refusal or proposal.is_refusal,
            status="ok" if ok else "needs_review",
            citations=citations,
            findings=findings,
            backend="openai" if backend.name == "openai" else "script",
            fallback_reason=fallback_reason,
            notes=[*notes, *proposal.notes],
            timings_ms=dict(clock.timings),
        )


def _candidate(script: Script, hit: Hit, order: Order | None) -> Candidate:
    bonus = ORDER_FIT_BONUS if fits_explicitly(script, order) else 1.0
    return Candidate(script, hit.score * bonus, dense_rank=hit.dense_rank, bm25_rank=hit.bm25_rank)


def _emergency_candidate(rule: EmergencyRule, scripts: dict[str, Script]) -> Candidate:
    """The rule's answer as a candidate that always fits and is cited as ``emergency:<id>``."""
    base = scripts[rule.script] if rule.script is not None and rule.script in scripts else None
    script = Script.model_construct(
        id=f"{EMERGENCY_PREFIX}{rule.id}",
        category="emergency",
        title=rule.description or rule.id,
        questions=[],
        reply=base.reply if base is not None else rule.reply or "",
        declines=base.declines if base is not None else rule.declines,
        next_steps=[],
        tags=[],
        source=Source(seed="corpus/emergency.yaml", section=rule.id),
        conditions=base.conditions if base is not None else Conditions(),
        phrase=None,
    )
    return Candidate(script, 1.0, emergency=True)


_drafters: dict[str, Drafter] = {}


def drafter_for(settings: Settings) -> Drafter:
    """One Drafter per distinct settings, so the index and clients are reused."""
    key = settings.model_dump_json()
    if key not in _drafters:
        _drafters[key] = Drafter(settings)
    return _drafters[key]


def draft_reply(
    message: str | Message,
    shop: str = "default",
    backend: str | None = None,
    *,
    order: Order | None = None,
    turns: list[Turn] | None = None,
    settings: Settings | None = None,
) -> Draft:
    """Draft a reply to a customer's message. The one entry point of the CLI, API and eval."""
    if isinstance(message, str):
        message = Message(text=message, shop=shop, order=order, turns=turns or [])
    return drafter_for(settings or get_settings()).draft(message, backend)
