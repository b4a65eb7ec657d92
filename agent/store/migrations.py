"""The store's schema as append-only migrations, each applied once and recorded in ``_migrations``.

Never edit a migration that has shipped; append the next one (``m00N_what_and_why``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Append ``fn`` to the schema history; its name is what ``_migrations`` records."""
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE api_keys (
            key_id TEXT PRIMARY KEY, name TEXT NOT NULL, salt BLOB NOT NULL, digest BLOB NOT NULL,
            created_at TEXT NOT NULL, revoked_at TEXT)"""
    )
    db.execute(
        """CREATE TABLE drafts (
            draft_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, shop TEXT NOT NULL, query TEXT NOT NULL,
            draft TEXT NOT NULL, status TEXT NOT NULL, is_refusal INTEGER NOT NULL, backend TEXT NOT NULL,
            cited_ids TEXT NOT NULL, rule_ids TEXT NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE feedback (
            id INTEGER PRIMARY KEY AUTOINCREMENT, draft_id TEXT NOT NULL REFERENCES drafts(draft_id),
            action TEXT NOT NULL CHECK (action IN ('accepted', 'edited', 'rejected')),
            final_text TEXT, reason TEXT, created_at TEXT NOT NULL)"""
    )


@migration
def m002_active_key_names(db: sqlite3.Connection) -> None:
    db.execute("CREATE UNIQUE INDEX api_keys_active_name ON api_keys(name) WHERE revoked_at IS NULL")


@migration
def m003_who_and_what(db: sqlite3.Connection) -> None:
    """Which key served a draft or sent feedback, and the category of the draft's first script."""
    db.execute("ALTER TABLE drafts ADD COLUMN key_name TEXT")
    db.execute("ALTER TABLE drafts ADD COLUMN category TEXT")
    db.execute("ALTER TABLE feedback ADD COLUMN key_name TEXT")
    db.execute("CREATE INDEX feedback_draft ON feedback(draft_id)")


@migration
def m004_key_roles(db: sqlite3.Connection) -> None:
    """Keys carry a role: ``agent`` drafts and sends feedback; ``supervisor`` also reviews and exports."""
    db.execute(
        "ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'agent' CHECK (role IN ('agent', 'supervisor'))"
    )


@migration
def m005_feedback_revisions(db: sqlite3.Connection) -> None:
    """Feedback is once per draft per key; later changes are numbered revisions; retries carry an idempotency key.

    Rows written before this migration are numbered in the order they were written.
    """
    db.execute("ALTER TABLE feedback ADD COLUMN revision INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE feedback ADD COLUMN idempotency_key TEXT")
    db.execute(
        """UPDATE feedback SET revision = (
               SELECT COUNT(*) FROM feedback older
               WHERE older.draft_id = feedback.draft_id AND older.key_name IS feedback.key_name
                 AND older.id <= feedback.id)"""
    )
    db.execute("CREATE UNIQUE INDEX feedback_revision ON feedback(draft_id, IFNULL(key_name, ''), revision)")
    db.execute(
        "CREATE UNIQUE INDEX feedback_idempotency ON feedback(IFNULL(key_name, ''), idempotency_key)"
        " WHERE idempotency_key IS NOT NULL"
    )
