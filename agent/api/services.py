"""What the routes share: settings, the workspace, the drafter, the store, and the API's bounds.

Every request reads ONE workspace snapshot (:meth:`Services.workspace`): the last good one the
holder has, so a broken save on disk never fails a request. Personal data in the customer's
text is masked by the drafting pipeline before any backend (and so any LLM prompt) sees it, by
the store before it is kept, and before anything is logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from agent.api.limits import DraftSlots, Limits, RateLimiter
from agent.api.schemas import CheckIn, DraftIn
from agent.api.shapes import verdict_json
from agent.config import BACKENDS_DEFAULT, LLM_BACKEND, Settings, default_workspace
from agent.drafting.pipeline import Drafter, drafter_for
from agent.errors import InputError, KefuError
from agent.guardrails import check
from agent.redact import Redactor, load_redactor
from agent.store import Store, store_path
from agent.types import Message
from agent.workspace import Workspace, WorkspaceHolder, holder_for

log = logging.getLogger("kefu.api")
LONG_DRAFT_NICE = 10


@dataclass
class Services:
    """Shared by every request of one app."""

    settings: Settings
    drafter: Drafter | None = None
    limits: Limits = field(default_factory=Limits)
    store: Store | None = None
    warm_problem: str | None = "not warmed up yet"
    _redactor: Redactor | None = None

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.limits.rate_per_s, self.limits.burst)
        # Long messages are drafted by their own threads at a lower CPU priority: short drafts first.
        self.long_pool = ThreadPoolExecutor(
            self.limits.max_long_drafts, thread_name_prefix="kefu-long-draft", initializer=lower_priority
        )
        self.slots = DraftSlots(self.limits.max_drafts, self.limits.max_long_drafts, self.limits.long_duty)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Open the store, start watching the workspace, and warm drafting up."""
        holder = self.holder()
        if holder is not None:
            holder.start()
        self.store = Store(store_path(self.settings), self.redact)
        self.store.migrate()
        self.warm()

    def stop(self) -> None:
        holder = self.holder()
        if holder is not None:
            holder.stop()
        if self.store is not None:
            self.store.close()
        self.long_pool.shutdown(wait=False, cancel_futures=True)

    def warm(self) -> None:
        """Run one draft and one check, so requests start hot; a failure is reported by /readyz."""
        try:
            workspace = self.workspace()
            text = workspace.corpus.scripts[0].questions[0]
            draft = self.drafting().draft(Message(text=text), BACKENDS_DEFAULT)
            check(draft.text, rules=workspace.tone, query=text)
        except Exception as exc:  # reported by /readyz and retried there; the server still starts
            self.warm_problem = f"{exc.code}: {exc.message}" if isinstance(exc, KefuError) else repr(exc)
            log.warning("warm-up failed: %s", self.warm_problem)
            return
        self.warm_problem = None

    # --- what requests read ------------------------------------------------------------

    def db(self) -> Store:
        if self.store is None:
            raise RuntimeError("the store is used before the app started")
        return self.store

    def drafting(self) -> Drafter:
        if self.drafter is None:
            self.drafter = drafter_for(self.settings)
        return self.drafter

    def holder(self) -> WorkspaceHolder | None:
        """The holder the drafter reads from; None when it was given one fixed snapshot."""
        source = self.drafting().workspace
        if isinstance(source, Workspace):
            return None
        return source if isinstance(source, WorkspaceHolder) else holder_for(self.settings)

    def workspace(self) -> Workspace:
        """The snapshot for one request (the last good one)."""
        source = self.drafting().workspace
        if isinstance(source, Workspace):
            return source
        holder = self.holder()
        assert holder is not None
        return holder.current()

    def redactor(self) -> Redactor:
        """The current workspace's redactor; while none loads, the last one seen, else the shipped default's."""
        try:
            self._redactor = self.workspace().redactor
        except KefuError:
            if self._redactor is None:
                self._redactor = load_redactor(default_workspace() / "corpus")
        return self._redactor

    def redact(self, text: str) -> str:
        return self.redactor().redact(text)

    def redactor_callable(self) -> Callable[[str], str]:
        """What the log filter masks with: the current redactor's ``redact``."""
        return self.redactor().redact

    # --- the work behind the routes ----------------------------------------------------

    def draft(self, body: DraftIn, key_name: str | None) -> dict[str, Any]:
        """Draft a reply to the masked message, store it, and return the API's draft JSON."""
        if body.backend == LLM_BACKEND and not self.settings.llm_configured:
            raise InputError(
                f"backend {LLM_BACKEND!r} is not configured on this server: omit backend or use {BACKENDS_DEFAULT!r}"
            )
        # The pipeline masks personal data before retrieval or any backend sees it; the store masks
        # what it keeps. Neither needs the API to mask first.
        message = Message(text=body.query, shop=body.shop, order=body.order, turns=list(body.turns))
        draft = self.drafting().draft(message, body.backend)
        draft_id = self.db().record_draft(draft, body.query, body.shop, key_name)
        head: dict[str, Any] = {"draft_id": draft_id} if body.id is None else {"draft_id": draft_id, "id": body.id}
        return {**head, **draft.public()}

    def verdict(self, body: CheckIn) -> dict[str, Any]:
        """The guardrail's verdict on an agent's text, with the current workspace's tone rules."""
        rules = self.workspace().tone
        return verdict_json(check(body.draft, rules=rules, query=body.query, declared_refusal=body.declared_refusal))


def lower_priority() -> None:
    """Lower the calling thread's CPU priority (Linux: per-thread nice 10); elsewhere nothing."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LONG_DRAFT_NICE)
