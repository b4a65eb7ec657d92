"""What supervisors read: drafts with their latest feedback, and the review queue.

A draft belongs in the queue when kefu marked it ``needs_review`` or its agent edited it (the
latest feedback revision counts). Filters are ANDed; newest first.
"""

from __future__ import annotations

from typing import Any

from agent.store.drafts import Drafts, _decoded

QUEUE_LIMIT = 200

_ROWS = """SELECT d.draft_id, d.created_at, d.shop, d.query, d.draft, d.status, d.is_refusal, d.backend,
                  d.cited_ids, d.rule_ids, d.key_name, d.category, f.action, f.final_text, f.reason,
                  f.revision, f.created_at AS feedback_at, f.key_name AS feedback_key
           FROM drafts d LEFT JOIN feedback f ON f.id = (
               SELECT MAX(id) FROM feedback WHERE feedback.draft_id = d.draft_id)"""


class Review(Drafts):
    """Read-only views of drafts and feedback for the supervisor pages."""

    def drafts_with_feedback(
        self, where: str = "", params: tuple[object, ...] = (), limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Drafts (newest first) with their latest feedback; ``where`` is SQL over ``d`` (drafts) and ``f``."""
        sql = _ROWS + (f" WHERE {where}" if where else "") + " ORDER BY d.created_at DESC, d.draft_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_decoded(r) for r in self.conn().execute(sql, params)]

    def review_queue(
        self,
        shop: str | None = None,
        category: str | None = None,
        rule: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = QUEUE_LIMIT,
    ) -> list[dict[str, Any]]:
        """Drafts marked needs_review or edited by their agent; ``since``/``until`` are dates (YYYY-MM-DD).

        An empty filter ("" from a form) is no filter, like None."""
        where = ["(d.status = 'needs_review' OR f.action = 'edited')"]
        params: list[object] = []
        for column, value in (("d.shop", shop), ("d.category", category)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if since:
            where.append("substr(d.created_at, 1, 10) >= ?")
            params.append(since[:10])
        if until:
            where.append("substr(d.created_at, 1, 10) <= ?")
            params.append(until[:10])
        if rule:
            where.append("EXISTS (SELECT 1 FROM json_each(d.rule_ids) WHERE json_each.value = ?)")
            params.append(rule)
        return self.drafts_with_feedback(" AND ".join(where), tuple(params), limit)
