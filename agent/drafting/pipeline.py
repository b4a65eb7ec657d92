"""``draft_reply``: a customer's message in, a checked draft out.

    snapshot -> sanitise -> retrieve (per question) -> draft (a registered backend) -> guard loop -> Draft

Each draft reads ONE workspace snapshot (scripts, shop, tone rules, composer style, split and
context rules, redaction, emergency rules, prompts) from start to end.

The guard loop: check; apply the guardrail's safe fix; while findings remain and the backend
can revise, ask it (at most ``MAX_REVISIONS`` rounds); a draft that still has findings, or that
its backend marked, is returned as ``needs_review`` with its findings. Never ``ok`` with findings.
Then the grounding check (:mod:`agent.drafting.grounding`): cited ids that were not retrieved are
dropped and flagged, every claim must be held by a cited script, the shop or the order, and an
LLM's citations must fit each question; any failure is a finding and the draft needs review.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.config import BACKENDS_DEFAULT, LLM_BACKEND, Settings, get_settings
from agent.context import answered_turn, contradicts, fits_explicitly, named_platform, retrieval_text
from agent.drafting.backends import create_backend
from agent.drafting.base import Backend, Candidate, Grounding, Proposal, Question, Reviser
from agent.drafting.grounding import GroundingCheck, check_grounding
from agent.emergency import EMERGENCY_PREFIX, EmergencyRule, active_match
from agent.errors import BackendError, EmptyMessageError, InputError, MessageTooLongError
from agent.guardrails import check
from agent.retrieval.hybrid import Hit, Retriever
from agent.retrieval.service import get_retriever, retrieve_questions
from agent.text import sanitize
from agent.types import Citation, Conditions, Draft, Finding, Message, Order, Script, Source, Turn, Verdict
from agent.workspace.holder import WorkspaceHolder, holder_for
from agent.workspace.snapshot import Workspace

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


def masked(text: str, message: Message, workspace: Workspace, notes: list[str]) -> tuple[str, Message]:
    """The message, its earlier turns and the order's region with personal data masked (typed
    placeholders), before retrieval, any backend or any prompt sees them; a note names the kinds."""
    redactor = workspace.redactor
    text, kinds = redactor.mask(text)
    turns = []
    for turn in message.turns:
        clean, found = redactor.mask(turn.text)
        kinds += found
        turns.append(Turn(role=turn.role, text=clean))
    order = message.order
    if order is not None and order.region:
        region, found = redactor.mask(order.region)
        kinds += found
        order = order.model_copy(update={"region": region})
    if kinds:
        notes.append(f"personal data masked: {', '.join(dict.fromkeys(kinds))}")
    return text, message.model_copy(update={"text": text, "turns": turns, "order": order})


def bounded_message(message: Message, settings: Settings) -> Message:
    """The message with its shop name, earlier turns and order bounded like the text itself."""
    if len(message.shop) > settings.max_shop_chars:
        raise InputError(f"shop name is {len(message.shop)} characters; the limit is {settings.max_shop_chars}")
    turns = [
        Turn(role=t.role, text=sanitize(t.text)[: settings.max_turn_chars])
        for t in message.turns[-settings.max_turns :]
        if settings.max_turns
    ]
    return message.model_copy(update={"turns": turns})


WorkspaceSource = Workspace | WorkspaceHolder


@dataclass
class Drafter:
    """Holds what drafting reuses between messages: settings, the workspace, retriever, backends."""

    settings: Settings
    workspace: WorkspaceSource | None = None
    retriever_override: Retriever | None = None
    llm_override: Backend | None = None
    clock: Callable[[], datetime] = _utcnow
    _backends: dict[tuple[str, str], Backend] = field(default_factory=dict)

    def snapshot(self) -> Workspace:
        """The workspace snapshot one draft reads from start to end."""
        source = self.workspace if self.workspace is not None else holder_for(self.settings)
        return source if isinstance(source, Workspace) else source.current()

    def retriever(self, workspace: Workspace) -> Retriever:
        """The injected retriever, else the configured one over this snapshot's corpus."""
        if self.retriever_override is not None:
            return self.retriever_override
        return get_retriever(self.settings, workspace)

    def backend(self, name: str, workspace: Workspace) -> Backend:
        """The named backend for this snapshot (the injected LLM backend for the LLM's name)."""
        if name == LLM_BACKEND and self.llm_override is not None:
            return self.llm_override
        key = (name, workspace.version)
        if key not in self._backends:
            if len(self._backends) > 16:
                self._backends.clear()
            self._backends[key] = create_backend(name, self.settings, workspace)
        return self._backends[key]

    def ground(self, message: Message, text: str, workspace: Workspace) -> Grounding:
        """Per question, the candidate scripts: an active emergency rule, else retrieval fit to the order."""
        settings = self.settings
        scripts = workspace.scripts_by_id
        shop = workspace.shop(message.shop)
        order = message.order
        # The order's platform, else the one the customer names (天猫上你帮我改下价), else the shop's.
        said = [text, *(t.text for t in message.turns if t.role == "customer")]
        platform = order.platform if order is not None and order.platform else named_platform(said) or shop.platform
        query = retrieval_text(text, message.turns, workspace.context)
        now = self.clock()
        questions = []
        found = retrieve_questions(query, workspace, settings.top_k, self.retriever(workspace))
        answered = answered_turn(text, message.turns, workspace.context)
        if answered is not None and len(found) > 1:
            # The earlier question the agent already answered (能便宜点吗 before 那送点啥不) is not answered twice.
            asked = [(q, h) for q, h in found if q in text or q not in answered]
            found = asked or found
        rules = workspace.split
        for n, (question, hits) in enumerate(found):
            context = n > 0 and rules.is_context(question)
            rule = active_match(workspace.emergency, question, now)
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
                workspace = self.snapshot()
                message = bounded_message(message, settings)
                text, notes = prepare_message(message.text, settings)
                workspace.shop(message.shop)  # an unknown shop fails before any work
                text, message = masked(text, message, workspace, notes)
                name = settings.resolved_backend(backend)
                composer = self.backend(BACKENDS_DEFAULT, workspace)
            with clock("retrieve"):
                grounding = self.ground(message, text, workspace)
            chosen: Backend = composer
            fallback_reason = None
            with clock("draft"):
                if name != BACKENDS_DEFAULT:
                    try:
                        chosen = self.backend(name, workspace)
                        proposal = chosen.draft(grounding)
                    except BackendError as exc:
                        chosen, fallback_reason = composer, str(exc)
                        proposal = composer.draft(grounding)
                else:
                    proposal = composer.draft(grounding)
            with clock("guard"):
                proposal, verdict = self._guard(grounding, proposal, chosen, clock, workspace)
                decides_fit = chosen.name == BACKENDS_DEFAULT  # the composer decided fit itself
                grounded = check_grounding(grounding, proposal, workspace.style, decides_fit)
        return self._assemble(grounding, proposal, verdict, chosen, fallback_reason, notes, clock, grounded)

    def _guard(
        self, grounding: Grounding, proposal: Proposal, backend: Backend, clock: _Clock, workspace: Workspace
    ) -> tuple[Proposal, Verdict]:
        proposal = self._redacted(grounding, proposal, workspace)
        best = (proposal, self._checked(grounding, proposal, workspace))
        rounds = 0
        while not best[1].ok and isinstance(backend, Reviser) and rounds < MAX_REVISIONS:
            rounds += 1
            with clock("revise"):
                try:
                    revision = backend.revise(grounding, best[0].text, best[1].findings)
                    revised = self._redacted(grounding, revision, workspace)
                except BackendError as exc:
                    best[0].notes.append(f"revision failed: {exc}")
                    break
            verdict = self._checked(grounding, revised, workspace)
            if len(verdict.findings) <= len(best[1].findings):
                best = (revised, verdict)
        return best

    def _checked(self, grounding: Grounding, proposal: Proposal, workspace: Workspace) -> Verdict:
        rules = workspace.tone
        verdict = check(proposal.text, rules=rules, query=grounding.message, declared_refusal=proposal.is_refusal)
        if not verdict.ok and verdict.fixed:
            fixed = check(verdict.fixed, rules=rules, query=grounding.message, declared_refusal=proposal.is_refusal)
            if fixed.ok:
                proposal.text = verdict.fixed
                proposal.notes.append("guardrail applied a safe fix")
                # A fix that opened the draft with the apology did so because it declines: the fixed
                # text, opening with 非常抱歉, is not asked again, and is the same refusal.
                return fixed.model_copy(update={"is_refusal": fixed.is_refusal or verdict.is_refusal})
        return verdict

    def _redacted(self, grounding: Grounding, proposal: Proposal, workspace: Workspace) -> Proposal:
        """No personal data in a draft, whatever a backend wrote (the message reached it masked)."""
        cleaned = workspace.redactor.redact(proposal.text)
        if cleaned != proposal.text:
            proposal.text = cleaned
            proposal.notes.append("personal data removed from the draft")
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
        grounded: GroundingCheck | None = None,
    ) -> Draft:
        by_id = {c.script.id: c for c in grounding.scripts()}
        citations = [
            Citation(id=sid, category=by_id[sid].script.category, score=round(by_id[sid].score, 6))
            for sid in dict.fromkeys(proposal.cited_ids)
            if sid in by_id
        ]
        grounded = grounded or GroundingCheck()
        findings: list[Finding] = [*verdict.findings, *grounded.findings]
        ok = verdict.ok and not proposal.needs_review and grounded.ok
        return Draft(
            text=proposal.text,
            is_refusal=verdict.is_refusal or bool(proposal.is_refusal),
            status="ok" if ok else "needs_review",
            citations=citations,
            findings=findings,
            backend=backend.name,
            fallback_reason=fallback_reason,
            notes=[*notes, *proposal.notes, *grounded.notes],
            timings_ms=dict(clock.timings),
        )


def _candidate(script: Script, hit: Hit, order: Order | None) -> Candidate:
    bonus = ORDER_FIT_BONUS if fits_explicitly(script, order) else 1.0
    return Candidate(script, hit.score * bonus, dense_rank=hit.dense_rank, bm25_rank=hit.bm25_rank)


def _emergency_candidate(rule: EmergencyRule, scripts: Mapping[str, Script]) -> Candidate:
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
    workspace: Workspace | None = None,
) -> Draft:
    """Draft a reply to a customer's message. The one entry point of the CLI, API and eval.

    ``workspace`` is the snapshot to draft from; without one, the configured workspace's current one.
    """
    if isinstance(message, str):
        message = Message(text=message, shop=shop, order=order, turns=turns or [])
    drafter = drafter_for(settings or get_settings())
    if workspace is not None:
        drafter = Drafter(drafter.settings, workspace, clock=drafter.clock, _backends=drafter._backends)
    return drafter.draft(message, backend)
