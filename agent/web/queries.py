"""What the web pages read from the store, and the one write they make (feedback).

Read-only SQL over the store's tables until the store offers these itself (requested in
coord/requests.md: ``key_by_id``, ``review_queue``, outcomes with time and status); each
function takes the store object the API's services hold and uses only its ``conn()``.
"""

from __future__ import annotations

import inspect
import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["agent", "supervisor"]
QUEUE_LIMIT = 200


@dataclass(frozen=True)
class KeyInfo:
    name: str
    role: Role
    revoked: bool


def key_by_id(store: Any, key_id: str) -> KeyInfo | None:
    """The key with ``key_id`` (never its secret); None when there is none."""
    conn: sqlite3.Connection = store.conn()
    try:
        row = conn.execute("SELECT name, revoked_at, role FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        role = row["role"] if row is not None else None
    except sqlite3.OperationalError:  # a store from before keys had roles
        row = conn.execute("SELECT name, revoked_at FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        role = None
    if row is None:
        return None
    return KeyInfo(row["name"], "supervisor" if role == "supervisor" else "agent", row["revoked_at"] is not None)


def key_id_of(token: str) -> str | None:
    """The public id part of a presented key (``kefu_<id>_<secret>``)."""
    parts = token.strip().split("_", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "kefu" and parts[1] and parts[2] else None


# --- drafts with their latest feedback --------------------------------------------------

_ROWS = """SELECT d.draft_id, d.created_at, d.shop, d.query, d.draft, d.status, d.is_refusal, d.backend,
                  d.cited_ids, d.rule_ids, d.key_name, d.category,
                  f.action, f.final_text, f.reason, f.created_at AS feedback_at, f.key_name AS feedback_key
           FROM drafts d LEFT JOIN feedback f ON f.id = (
               SELECT MAX(id) FROM feedback WHERE feedback.draft_id = d.draft_id)"""


def _decoded(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    record["cited_ids"] = json.loads(record["cited_ids"] or "[]")
    record["rule_ids"] = json.loads(record["rule_ids"] or "[]")
    record["is_refusal"] = bool(record["is_refusal"])
    return record


def drafts(
    store: Any, where: str = "", params: tuple[object, ...] = (), limit: int | None = None
) -> list[dict[str, Any]]:
    """Drafts (newest first) with their latest feedback's action, final text and reason."""
    sql = _ROWS + (f" WHERE {where}" if where else "") + " ORDER BY d.created_at DESC, d.draft_id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [_decoded(r) for r in store.conn().execute(sql, params)]


def draft(store: Any, draft_id: str) -> dict[str, Any] | None:
    found = drafts(store, "d.draft_id = ?", (draft_id,))
    return found[0] if found else None


def review_queue(
    store: Any,
    shop: str | None = None,
    category: str | None = None,
    rule: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = QUEUE_LIMIT,
) -> list[dict[str, Any]]:
    """Drafts a supervisor should read: marked needs_review, or edited by the agent; filters are ANDed."""
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
    rows = drafts(store, " AND ".join(where), tuple(params), None if rule else limit)
    if rule:
        rows = [r for r in rows if rule in r["rule_ids"]][:limit]
    return rows


def facets(store: Any) -> dict[str, list[str]]:
    """The shops, categories and rules that occur in stored drafts (the queue's filter choices)."""
    conn = store.conn()
    shops = [r[0] for r in conn.execute("SELECT DISTINCT shop FROM drafts ORDER BY shop")]
    cats = [r[0] for r in conn.execute("SELECT DISTINCT category FROM drafts WHERE category IS NOT NULL ORDER BY 1")]
    rules: set[str] = set()
    for (raw,) in conn.execute("SELECT DISTINCT rule_ids FROM drafts"):
        rules.update(json.loads(raw or "[]"))
    return {"shops": shops, "categories": cats, "rules": sorted(rules)}


# --- per-script outcomes -------------------------------------------------------------------


@dataclass
class ScriptTally:
    script_id: str
    served: int = 0
    accepted: int = 0
    edited: int = 0
    rejected: int = 0

    @property
    def reviewed(self) -> int:
        return self.accepted + self.edited + self.rejected

    @property
    def edit_rate(self) -> float | None:
        return self.edited / self.reviewed if self.reviewed else None


def script_stats(store: Any) -> list[ScriptTally]:
    """Per cited script: drafts served and what agents did with them; most edited first."""
    tallies: dict[str, ScriptTally] = {}
    for row in drafts(store):
        for script_id in row["cited_ids"]:
            tally = tallies.setdefault(script_id, ScriptTally(script_id))
            tally.served += 1
            if row["action"] in ("accepted", "edited", "rejected"):
                setattr(tally, row["action"], getattr(tally, row["action"]) + 1)
    return sorted(tallies.values(), key=lambda t: (-(t.edit_rate or 0.0), -t.served, t.script_id))


def edits_of(store: Any, script_id: str) -> list[dict[str, Any]]:
    """The drafts citing ``script_id`` that an agent edited, newest first."""
    return [r for r in drafts(store, "f.action = 'edited'") if script_id in r["cited_ids"]]


HANDOFF_CATEGORY = "handoff"


def handoffs(store: Any, limit: int = 2000) -> list[dict[str, Any]]:
    """Drafts no script answered: nothing cited, or handed to a colleague (a ``handoff`` script first)."""
    return drafts(store, "d.cited_ids = '[]' OR d.category = ?", (HANDOFF_CATEGORY,), limit)


# --- feedback --------------------------------------------------------------------------------


def record_feedback(
    store: Any,
    draft_id: str,
    action: str,
    final_text: str | None,
    reason: str | None,
    key_name: str,
    idempotency_key: str | None,
    revise: bool = False,
) -> Any:
    """The store's ``record_feedback``, with the idempotency key and revise flag when the store takes them."""
    kwargs: dict[str, Any] = {}
    accepts = inspect.signature(store.record_feedback).parameters
    if idempotency_key and "idempotency_key" in accepts:
        kwargs["idempotency_key"] = idempotency_key
    if revise and "revise" in accepts:
        kwargs["revise"] = True
    return store.record_feedback(draft_id, action, final_text, reason, key_name, **kwargs)
