"""The SQLite store: API keys, every draft served, and the agents' feedback on those drafts.

    db.py          the file, its connections, transactions and permissions (0600)
    migrations.py  the schema, as append-only migrations
    keys.py        API keys with a role (agent | supervisor)
    drafts.py      drafts served
    feedback.py    feedback: once per draft per key, revisions, idempotent retries
    review.py      drafts with their latest feedback, the review queue
    stats.py       acceptance and edit rates
    seam.py        StoreLike: what the API and the web call (memory_store() is its fake)
    export.py      golden candidates from agents' edits

Personal data is masked by :mod:`agent.redact` before any text reaches the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agent.config import Settings
from agent.redact import load_redactor
from agent.store.db import BUSY_TIMEOUT_MS, Database
from agent.store.export import Export, Labeler, Labels, export_golden, golden_candidates
from agent.store.feedback import Action, ConflictError, Feedback, FeedbackRecord
from agent.store.keys import ROLES, ApiKey, KeyCheck, Keys, KeyStatus, Role
from agent.store.migrations import MIGRATIONS, migration
from agent.store.review import Review
from agent.store.seam import StoreLike
from agent.store.stats import NO_FINDING, NO_SCRIPT, Tally, feedback_stats

DB_NAME = "kefu.db"


class Store(Keys, Review, Feedback):
    """The store at ``path``: keys, drafts and feedback on one SQLite file."""


def store_path(settings: Settings) -> Path:
    return settings.data_dir / DB_NAME


def open_store(settings: Settings, redact: Callable[[str], str] | None = None) -> Store:
    """The store of ``settings.data_dir``, migrated to the latest schema.

    ``redact`` masks personal data before anything is written: pass the workspace snapshot's
    (``lambda text: holder.current().redactor.redact(text)``) so an edit of redaction.yaml applies;
    by default, the redactor of ``settings.corpus_dir``.
    """
    store = Store(store_path(settings), redact or load_redactor(settings.corpus_dir).redact)
    store.migrate()
    return store


def memory_store(redact: Callable[[str], str] | None = None) -> Store:
    """The store's fake: the real Store on an in-memory SQLite database (nothing on disk), migrated."""
    store = Store(Path(":memory:"), redact or (lambda text: text), memory=True)
    store.conn()  # the connection that keeps the database alive
    store.migrate()
    return store


__all__ = [
    "BUSY_TIMEOUT_MS",
    "DB_NAME",
    "MIGRATIONS",
    "NO_FINDING",
    "NO_SCRIPT",
    "ROLES",
    "Action",
    "ApiKey",
    "ConflictError",
    "Database",
    "Export",
    "FeedbackRecord",
    "KeyCheck",
    "KeyStatus",
    "Labeler",
    "Labels",
    "Review",
    "Role",
    "Store",
    "StoreLike",
    "Tally",
    "export_golden",
    "feedback_stats",
    "golden_candidates",
    "memory_store",
    "migration",
    "open_store",
    "store_path",
]
