"""Drafts served: what the customer asked (masked), what kefu drafted, and for which key."""

from __future__ import annotations

import json
import uuid
from typing import Any

from agent.errors import NotFoundError
from agent.store.db import Database, now
from agent.types import Draft


def _decoded(row: Any) -> dict[str, Any]:
    record = dict(row)
    for name in ("cited_ids", "rule_ids"):
        if name in record:
            record[name] = json.loads(record[name])
    if "is_refusal" in record:
        record["is_refusal"] = bool(record["is_refusal"])
    return record


class Drafts(Database):
    """The ``drafts`` table."""

    def record_draft(self, draft: Draft, query: str, shop: str, key_name: str | None = None) -> str:
        """Store a served draft (personal data masked in the query and the draft); return its ``draft_id``."""
        draft_id = uuid.uuid4().hex
        cited = [c.id for c in draft.citations]
        rules = sorted({f.rule for f in draft.findings})
        category = draft.citations[0].category if draft.citations else None
        row: tuple[object, ...] = (draft_id, now(), shop, self.redact(query), self.redact(draft.text), draft.status)
        row += (int(draft.is_refusal), draft.backend, json.dumps(cited), json.dumps(rules), key_name, category)
        with self.write() as db:
            db.execute(
                "INSERT INTO drafts (draft_id, created_at, shop, query, draft, status, is_refusal, backend,"
                " cited_ids, rule_ids, key_name, category) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        return draft_id

    def get_draft(self, draft_id: str) -> dict[str, Any]:
        """One draft as stored; NotFoundError when there is none."""
        row = self.conn().execute("SELECT * FROM drafts WHERE draft_id = ?", (draft_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no draft with id {draft_id!r}")
        return _decoded(row)

    def outcomes(self) -> list[dict[str, Any]]:
        """Every draft with its latest feedback (``action`` None when it has none), oldest first."""
        rows = self.conn().execute(
            """SELECT d.draft_id, d.created_at, d.status, d.shop, d.query, d.draft, d.is_refusal, d.cited_ids,
                      d.rule_ids, d.category, d.key_name, f.action, f.final_text, f.reason, f.revision
               FROM drafts d LEFT JOIN feedback f ON f.id = (
                   SELECT MAX(id) FROM feedback WHERE feedback.draft_id = d.draft_id)
               ORDER BY d.created_at, d.draft_id"""
        )
        return [_decoded(r) for r in rows]
