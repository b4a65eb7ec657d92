"""The SQLite store: API keys, every draft served, and the agents' feedback on those drafts.

    db.py          the file, its connections, transactions and permissions (0600)
    migrations.py  the schema, as append-only migrations
    keys.py        API keys with a role (agent | supervisor)
    drafts.py      drafts served
    feedback.py    feedback: once per draft per key, revisions, idempotent retries
    stats.py       acceptance and edit rates
    export.py      golden candidates from agents' edits

Personal data is masked by :mod:`agent.redact` before any text reaches the file.
"""

from __future__ import annotations

from pathlib import Path

from agent.config import Settings
from agent.redact import load_redactor
from agent.store.db import BUSY_TIMEOUT_MS, Database
from agent.store.drafts import Drafts
from agent.store.export import Export, Labeler, Labels, export_golden, golden_candidates
from agent.store.feedback import Action, ConflictError, Feedback, FeedbackRecord
from agent.store.keys import ROLES, ApiKey, KeyCheck, Keys, KeyStatus, Role
from agent.store.migrations import MIGRATIONS, migration
from agent.store.stats import NO_FINDING, NO_SCRIPT, Tally, feedback_stats

DB_NAME = "kefu.db"


class Store(Keys, Drafts, Feedback):
    """The store at ``path``: keys, drafts and feedback on one SQLite file."""


def store_path(settings: Settings) -> Path:
    return settings.data_dir / DB_NAME


def open_store(settings: Settings) -> Store:
    """The store of ``settings.data_dir``, migrated to the latest schema."""
    store = Store(store_path(settings), load_redactor(settings.corpus_dir).redact)
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
    "Role",
    "Store",
    "Tally",
    "export_golden",
    "feedback_stats",
    "golden_candidates",
    "migration",
    "open_store",
    "store_path",
]
