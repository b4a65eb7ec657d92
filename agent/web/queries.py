"""What the web pages read from the store, and the one write they make (feedback).

Thin over the store's seam (:class:`agent.store.seam.StoreLike`: ``key_by_id``, ``review_queue``,
``drafts_with_feedback``, ``record_feedback``); what the pages compute from those rows (per-script
tallies, hand-offs, the queue's filter choices) is here.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any

from agent.store.keys import Role
from agent.store.stats import Tally


@dataclass(frozen=True)
class KeyInfo:
    name: str
    role: Role
    revoked: bool


def key_by_id(store: Any, key_id: str) -> KeyInfo | None:
    """The key with ``key_id`` (never its secret), from the store's ``key_by_id``; None when there is none."""
    found = store.key_by_id(key_id)
    if found is None or found.name is None:
        return None
    role: Role = "supervisor" if found.role == "supervisor" else "agent"
    return KeyInfo(found.name, role, found.status != "ok")


# --- drafts with their latest feedback --------------------------------------------------


def drafts(
    store: Any, where: str = "", params: tuple[object, ...] = (), limit: int | None = None
) -> list[dict[str, Any]]:
    """Drafts (newest first) with their latest feedback's action, final text and reason."""
    rows: list[dict[str, Any]] = store.drafts_with_feedback(where, params, limit)
    return rows


def draft(store: Any, draft_id: str) -> dict[str, Any] | None:
    found = drafts(store, "d.draft_id = ?", (draft_id,))
    return found[0] if found else None


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


def script_stats(store: Any) -> list[Tally]:
    """Per cited script (``Tally.key``): drafts served and what agents did with them; most edited first."""
    tallies: dict[str, Tally] = {}
    for row in drafts(store):
        for script_id in row["cited_ids"]:
            tallies.setdefault(script_id, Tally(script_id)).add(row["action"])
    return sorted(tallies.values(), key=lambda t: (-(t.edit_rate or 0.0), -t.drafts, t.key))


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
