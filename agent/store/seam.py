"""The store's seam: the methods the API and the web workbench call, as a Protocol.

:class:`agent.store.Store` is the implementation (SQLite file); ``agent.store.memory_store()``
is the fake beside it (the same Store on an in-memory database), for tests that need no file.
"""

from __future__ import annotations

from typing import Any, Protocol

from agent.store.feedback import Action, FeedbackRecord
from agent.store.keys import ApiKey, KeyCheck
from agent.types import Draft


class StoreLike(Protocol):
    """Keys, drafts and feedback, as the API and the web use them."""

    def create_key(self, name: str, role: str = "agent") -> str: ...

    def revoke_key(self, name: str) -> None: ...

    def list_keys(self) -> list[ApiKey]: ...

    def verify_key(self, token: str) -> KeyCheck: ...

    def key_by_id(self, key_id: str) -> KeyCheck | None: ...

    def record_draft(self, draft: Draft, query: str, shop: str, key_name: str | None = None) -> str: ...

    def get_draft(self, draft_id: str) -> dict[str, Any]: ...

    def record_feedback(
        self,
        draft_id: str,
        action: Action,
        final_text: str | None = None,
        reason: str | None = None,
        key_name: str | None = None,
        *,
        revise: bool = False,
        idempotency_key: str | None = None,
    ) -> FeedbackRecord: ...

    def feedback_for(self, draft_id: str) -> list[dict[str, Any]]: ...

    def outcomes(self) -> list[dict[str, Any]]: ...

    def review_queue(
        self,
        shop: str | None = None,
        category: str | None = None,
        rule: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]: ...

    def writable(self) -> bool: ...

    def close(self) -> None: ...
