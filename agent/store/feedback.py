"""What agents did with their drafts: once per draft per key, later changes as numbered revisions.

* Only the key that was served a draft may send feedback on it; to any other key the draft does
  not exist (404), so draft ids cannot be probed.
* The first feedback is revision 1. Sending feedback again is a conflict unless it says
  ``revise``: then it is stored as the next revision; nothing is ever overwritten.
* A retry with the same ``idempotency_key`` returns the record the first attempt stored.

Feedback is committed durably (fsync'd) before :meth:`Feedback.record_feedback` returns; the
final text and the reason are masked like everything else the store writes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

from agent.errors import InputError, NotFoundError
from agent.store.db import Database, now

Action = Literal["accepted", "edited", "rejected"]
ACTIONS: tuple[str, ...] = ("accepted", "edited", "rejected")
MAX_IDEMPOTENCY_KEY = 128


class ConflictError(InputError):
    """The request contradicts what is stored (409): feedback exists, or an idempotency key was reused."""

    code = "conflict"


@dataclass(frozen=True)
class FeedbackRecord:
    """One stored feedback revision; ``replayed`` when an idempotent retry returned it again."""

    id: int
    draft_id: str
    action: Action
    created_at: str
    revision: int = 1
    replayed: bool = False


def check_feedback(action: str, final_text: str | None, reason: str | None) -> None:
    """InputError unless ``action`` is known and carries what it needs (edited: the text; rejected: why)."""
    if action not in ACTIONS:
        raise InputError(f"action {action!r}: use accepted, edited or rejected")
    if action == "edited" and not (final_text and final_text.strip()):
        raise InputError("final_text: the text the agent sent is required when action is edited")
    if action == "rejected" and not (reason and reason.strip()):
        raise InputError("reason: say why the draft was rejected")


def _record(row: sqlite3.Row, replayed: bool = False) -> FeedbackRecord:
    action: Action = row["action"]
    return FeedbackRecord(row["id"], row["draft_id"], action, row["created_at"], row["revision"], replayed)


class Feedback(Database):
    """The ``feedback`` table."""

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
    ) -> FeedbackRecord:
        """Store a key's verdict on a draft it was served; see the module's rules."""
        check_feedback(action, final_text, reason)
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise InputError(f"idempotency key: 1 to {MAX_IDEMPOTENCY_KEY} characters")
        final = self.redact(final_text) if final_text is not None else None
        why = self.redact(reason) if reason is not None else None
        with self.write(durable=True) as db:
            self._draft_of(db, draft_id, key_name)
            if idempotency_key is not None:
                earlier = self._replay(db, draft_id, key_name, idempotency_key)
                if earlier is not None:
                    return earlier
            latest = db.execute(
                "SELECT MAX(revision) FROM feedback WHERE draft_id = ? AND key_name IS ?", (draft_id, key_name)
            ).fetchone()[0]
            if latest is not None and not revise:
                raise ConflictError(
                    f"feedback on draft {draft_id!r} exists (revision {latest}): send revise=true to record a change"
                )
            cur = db.execute(
                "INSERT INTO feedback (draft_id, action, final_text, reason, created_at, key_name, revision,"
                " idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (draft_id, action, final, why, now(), key_name, (latest or 0) + 1, idempotency_key),
            )
            row = db.execute("SELECT * FROM feedback WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _record(row)

    @staticmethod
    def _draft_of(db: sqlite3.Connection, draft_id: str, key_name: str | None) -> None:
        row = db.execute("SELECT key_name FROM drafts WHERE draft_id = ?", (draft_id,)).fetchone()
        if row is None or (key_name is not None and row["key_name"] not in (None, key_name)):
            raise NotFoundError(f"no draft with id {draft_id!r} served to this key: send the draft_id you were served")

    @staticmethod
    def _replay(db: sqlite3.Connection, draft_id: str, key_name: str | None, key: str) -> FeedbackRecord | None:
        row = db.execute(
            "SELECT * FROM feedback WHERE key_name IS ? AND idempotency_key = ?", (key_name, key)
        ).fetchone()
        if row is None:
            return None
        if row["draft_id"] != draft_id:
            raise ConflictError("idempotency key already used for feedback on another draft")
        return _record(row, replayed=True)

    def feedback_for(self, draft_id: str) -> list[dict[str, Any]]:
        """Every revision of every key's feedback on ``draft_id``, oldest first."""
        rows = self.conn().execute("SELECT * FROM feedback WHERE draft_id = ? ORDER BY id", (draft_id,))
        return [dict(r) for r in rows]
