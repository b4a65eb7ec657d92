"""Fakes for the drafting seams (a backend, an LLM transport): they answer from a script and fail loudly."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agent.config import LLM_BACKEND
from agent.drafting.base import Grounding, Proposal
from agent.errors import BackendError
from agent.types import Finding

Step = Proposal | BackendError | Callable[[Grounding], Proposal]


@dataclass
class ScriptedBackend:
    """Answers ``draft`` and ``revise`` calls from one queue; an extra call is an AssertionError."""

    steps: Iterable[Step]
    name: str = LLM_BACKEND
    calls: list[str] = field(default_factory=list)
    revisions: list[list[Finding]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: deque[Step] = deque(self.steps)

    def _next(self, grounding: Grounding, call: str) -> Proposal:
        self.calls.append(call)
        if not self._queue:
            raise AssertionError(f"ScriptedBackend: call #{len(self.calls)} ({call}) was not scripted")
        step = self._queue.popleft()
        if isinstance(step, BackendError):
            raise step
        proposal = step(grounding) if callable(step) else step
        return Proposal(proposal.text, proposal.is_refusal, list(proposal.cited_ids), proposal.needs_review)

    def draft(self, grounding: Grounding) -> Proposal:
        return self._next(grounding, "draft")

    def revise(self, grounding: Grounding, text: str, findings: list[Finding]) -> Proposal:
        self.revisions.append(list(findings))
        return self._next(grounding, "revise")

    @property
    def remaining(self) -> int:
        return len(self._queue)


TransportStep = str | BackendError | Callable[[str, str], str]


@dataclass
class FakeTransport:
    """The LLM transport for tests: answers ``complete`` from a queue; an extra call is an AssertionError.

    Each call's system and user text is kept in ``prompts`` so a test can read what would have
    left the process.
    """

    replies: Iterable[TransportStep]
    prompts: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: deque[TransportStep] = deque(self.replies)

    def complete(self, system: str, user: str, params: dict[str, Any]) -> str:
        self.prompts.append((system, user))
        if not self._queue:
            raise AssertionError(f"FakeTransport: call #{len(self.prompts)} was not scripted")
        step = self._queue.popleft()
        if isinstance(step, BackendError):
            raise step
        return step(system, user) if callable(step) else step
