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
from typing import Any

from agent.config import Settings, get_settings
from agent.corpus import corpus_for, shop_for
from agent.drafting.base import Backend, Candidate, Grounding, Proposal, Question, Reviser
from agent.drafting.composer import ScriptComposer
from agent.errors import BackendError, EmptyMessageError, MessageTooLongError
from agent.guardrails import check
from agent.redact import load_redactor
from agent.text import sanitize
from agent.types import Citation, Draft, Finding, Message, Order, Turn, Verdict

MAX_REVISIONS = 2


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
    retriever_factory: Callable[[Settings], Any] | None = None
    llm_factory: Callable[[Settings], Backend] | None = None
    _retriever: Any = None
    _llm: Backend | None = None

    def retriever(self) -> Any:
        if self._retriever is None:
            factory = self.retriever_factory
            if factory is None:
                from agent.retrieval import get_retriever

                factory = get_retriever
            self._retriever = factory(self.settings)
        return self._retriever

    def llm(self) -> Backend:
        if self._llm is None:
            factory = self.llm_factory
            if factory is None:
                from agent.drafting.llm import OpenAIBackend

                factory = OpenAIBackend
            self._llm = factory(self.settings)
        return self._llm

    def ground(self, message: Message, text: str) -> Grounding:
        settings = self.settings
        corpus = corpus_for(settings.corpus_dir)
        scripts = corpus.by_id()
        questions = []
        for question, hits in self.retriever().retrieve_questions(text, settings.top_k):
            cands = tuple(Candidate(scripts[h.script_id], h.score) for h in hits if h.script_id in scripts)
            questions.append(Question(question, cands))
        return Grounding(
            message=text,
            questions=tuple(questions),
            shop=shop_for(settings.corpus_dir, message.shop),
            order=message.order,
            turns=tuple(message.turns),
        )

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
