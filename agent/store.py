"""The SQLite store: API keys, every draft served, and the agents' feedback on those drafts.

One file, ``settings.data_dir / "kefu.db"``, shared by every ``kefu serve`` process on a host:
WAL mode so readers never wait for a writer, ``busy_timeout`` so writers queue instead of
failing, and feedback committed with ``synchronous=FULL`` before the API acknowledges it.

The schema is a list of append-only migrations (:data:`MIGRATIONS`: ``m001_initial``,
``m002_...``), each applied once and recorded in ``_migrations``. Never edit one that has
shipped; add the next. Personal data (phone numbers, ID-card numbers, passwords) is masked
by :mod:`agent.redact` before any text reaches the file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from agent.config import Settings
from agent.errors import InputError, NotFoundError, StoreError
from agent.redact import load_redactor
from agent.types import Draft

Action = Literal["accepted", "edited", "rejected"]
KeyStatus = Literal["ok", "unknown", "revoked"]
Migration = Callable[[sqlite3.Connection], None]

DB_NAME = "kefu.db"
BUSY_TIMEOUT_MS = 10_000
KEY_PREFIX = "kefu"
_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True)
class KeyCheck:
    """The answer for a presented key: ``ok``, ``unknown`` (401) or ``revoked`` (403)."""

    status: KeyStatus
    name: str | None = None


@dataclass(frozen=True)
class FeedbackRecord:
    id: int
    draft_id: str
    action: Action
    created_at: str


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode(), hashlib.sha256).digest()


def _split_key(token: str) -> tuple[str, str] | None:
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class Store:
    """The store at ``path``; connections open lazily, one per thread."""

    def __init__(self, path: Path, redact: Callable[[str], str]) -> None:
        self.path = path
        self.redact = redact
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []

    # --- connections and migrations ----------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc} (check KEFU_DATA_DIR)") from None
        conn.row_factory = sqlite3.Row
        with self._lock:
            self._all.append(conn)
        return conn

    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def _write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (``BEGIN IMMEDIATE``) so it cannot deadlock."""
        conn = self.conn()
        try:
            if durable:
                conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path}: {exc}") from None
        finally:
            if durable:
                conn.execute("PRAGMA synchronous=NORMAL")

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded; return their names."""
        applied = []
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            done = {row["name"] for row in db.execute("SELECT name FROM _migrations")}
            for fn in MIGRATIONS:
                if fn.__name__ not in done:
                    fn(db)
                    db.execute("INSERT INTO _migrations VALUES (?, ?)", (fn.__name__, _now()))
                    applied.append(fn.__name__)
        return applied

    def migrations(self) -> list[str]:
        return [row["name"] for row in self.conn().execute("SELECT name FROM _migrations ORDER BY rowid")]

    def writable(self) -> bool:
        """Whether a write lock can be taken right now (for readiness checks)."""
        try:
            with self._write() as db:
                db.execute("SELECT 1 FROM _migrations LIMIT 1")
        except StoreError:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    # --- API keys ----------------------------------------------------------------------

    def create_key(self, name: str) -> str:
        """A new key for ``name``; the returned secret is never stored and cannot be shown again."""
        if not _KEY_NAME.fullmatch(name):
            raise InputError(f"key name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
        key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_bytes(16)
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)",
                    (key_id, name, salt, _digest(salt, secret), _now()),
                )
        except StoreError as exc:
            if "UNIQUE" in exc.message:
                raise InputError(f"an active key named {name!r} exists: revoke it first or pick another name") from None
            raise
        return f"{KEY_PREFIX}_{key_id}_{secret}"

    def revoke_key(self, name: str) -> None:
        with self._write() as db:
            cur = db.execute("UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (_now(), name))
        if cur.rowcount == 0:
            raise NotFoundError(f"no active key named {name!r} (see kefu keys list)")

    def list_keys(self) -> list[ApiKey]:
        rows = self.conn().execute("SELECT key_id, name, created_at, revoked_at FROM api_keys ORDER BY created_at")
        return [ApiKey(r["key_id"], r["name"], r["created_at"], r["revoked_at"]) for r in rows]

    def verify_key(self, token: str) -> KeyCheck:
        parts = _split_key(token)
        if parts is None:
            return KeyCheck("unknown")
        key_id, secret = parts
        row = (
            self.conn()
            .execute("SELECT name, salt, digest, revoked_at FROM api_keys WHERE key_id = ?", (key_id,))
            .fetchone()
        )
        if row is None or not hmac.compare_digest(_digest(row["salt"], secret), row["digest"]):
            return KeyCheck("unknown")
        return KeyCheck("revoked" if row["revoked_at"] else "ok", row["name"])

    # --- drafts and feedback -----------------------------------------------------------

    def record_draft(self, draft: Draft, query: str, shop: str, key_name: str | None = None) -> str:
        """Store a served draft (personal data masked); return its new ``draft_id``."""
        draft_id = uuid.uuid4().hex
        cited = [c.id for c in draft.citations]
        rules = sorted({f.rule for f in draft.findings})
        category = draft.citations[0].category if draft.citations else None
        row: tuple[object, ...] = (draft_id, _now(), shop, self.redact(query), self.redact(draft.text), draft.status)
        row += (int(draft.is_refusal), draft.backend, json.dumps(cited), json.dumps(rules), key_name, category)
        with self._write() as db:
            db.execute(
                "INSERT INTO drafts (draft_id, created_at, shop, query, draft, status, is_refusal, backend,"
                " cited_ids, rule_ids, key_name, category) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        return draft_id

    def get_draft(self, draft_id: str) -> dict[str, Any]:
        row = self.conn().execute("SELECT * FROM drafts WHERE draft_id = ?", (draft_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no draft with id {draft_id!r}")
        record = dict(row)
        record.update(cited_ids=json.loads(row["cited_ids"]), rule_ids=json.loads(row["rule_ids"]))
        record["is_refusal"] = bool(row["is_refusal"])
        return record

    def record_feedback(
        self,
        draft_id: str,
        action: Action,
        final_text: str | None = None,
        reason: str | None = None,
        key_name: str | None = None,
    ) -> FeedbackRecord:
        """Store an agent's verdict on a draft, durably (fsync'd) before returning."""
        _check_feedback(action, final_text, reason)
        final = self.redact(final_text) if final_text is not None else None
        why = self.redact(reason) if reason is not None else None
        created = _now()
        with self._write(durable=True) as db:
            if db.execute("SELECT 1 FROM drafts WHERE draft_id = ?", (draft_id,)).fetchone() is None:
                raise NotFoundError(f"no draft with id {draft_id!r}: send the draft_id a draft was served with")
            cur = db.execute(
                "INSERT INTO feedback (draft_id, action, final_text, reason, created_at, key_name)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (draft_id, action, final, why, created, key_name),
            )
        return FeedbackRecord(int(cur.lastrowid or 0), draft_id, action, created)

    def feedback_for(self, draft_id: str) -> list[dict[str, Any]]:
        rows = self.conn().execute("SELECT * FROM feedback WHERE draft_id = ? ORDER BY id", (draft_id,))
        return [dict(r) for r in rows]

    def outcomes(self) -> list[dict[str, Any]]:
        """Every draft with the action of its latest feedback (None when it has none)."""
        rows = self.conn().execute(
            """SELECT d.draft_id, d.shop, d.query, d.draft, d.is_refusal, d.cited_ids, d.rule_ids, d.category,
                      f.action, f.final_text, f.reason
               FROM drafts d LEFT JOIN feedback f ON f.id = (
                   SELECT MAX(id) FROM feedback WHERE feedback.draft_id = d.draft_id)
               ORDER BY d.created_at, d.draft_id"""
        )
        out = []
        for r in rows:
            record = dict(r)
            record.update(cited_ids=json.loads(r["cited_ids"]), rule_ids=json.loads(r["rule_ids"]))
            out.append(record)
        return out


def _check_feedback(action: str, final_text: str | None, reason: str | None) -> None:
    if action not in ("accepted", "edited", "rejected"):
        raise InputError(f"action {action!r}: use accepted, edited or rejected")
    if action == "edited" and not (final_text and final_text.strip()):
        raise InputError("final_text: the text the agent sent is required when action is edited")
    if action == "rejected" and not (reason and reason.strip()):
        raise InputError("reason: say why the draft was rejected")


def store_path(settings: Settings) -> Path:
    return settings.data_dir / DB_NAME


def open_store(settings: Settings) -> Store:
    """The store of ``settings.data_dir``, migrated to the latest schema."""
    store = Store(store_path(settings), load_redactor(settings.corpus_dir).redact)
    store.migrate()
    return store


# --- what feedback says ----------------------------------------------------------------


@dataclass
class Tally:
    """Drafts served under one key (a script, a rule, or all) and what agents did with them."""

    key: str
    drafts: int = 0
    accepted: int = 0
    edited: int = 0
    rejected: int = 0

    @property
    def reviewed(self) -> int:
        return self.accepted + self.edited + self.rejected

    def add(self, action: str | None) -> None:
        self.drafts += 1
        if action in ("accepted", "edited", "rejected"):
            setattr(self, action, getattr(self, action) + 1)

    def as_dict(self) -> dict[str, Any]:
        seen = self.reviewed
        return {
            "key": self.key,
            "drafts": self.drafts,
            "reviewed": seen,
            "accepted": self.accepted,
            "edited": self.edited,
            "rejected": self.rejected,
            "acceptance_rate": round(self.accepted / seen, 4) if seen else None,
            "edit_rate": round(self.edited / seen, 4) if seen else None,
        }


NO_SCRIPT = "(no script)"
NO_FINDING = "(no finding)"


def feedback_stats(store: Store) -> dict[str, Any]:
    """Acceptance and edit rates overall, per cited script and per guardrail rule of the draft."""
    total = Tally("all")
    scripts: dict[str, Tally] = {}
    rules: dict[str, Tally] = {}
    for row in store.outcomes():
        total.add(row["action"])
        for script_id in row["cited_ids"] or [NO_SCRIPT]:
            scripts.setdefault(script_id, Tally(script_id)).add(row["action"])
        for rule in row["rule_ids"] or [NO_FINDING]:
            rules.setdefault(rule, Tally(rule)).add(row["action"])
    return {
        "total": total.as_dict(),
        "scripts": [t.as_dict() for _, t in sorted(scripts.items())],
        "rules": [t.as_dict() for _, t in sorted(rules.items())],
    }


def golden_candidates(store: Store) -> list[dict[str, Any]]:
    """Drafts an agent edited, as eval golden cases for a supervisor to review (golden = what was sent)."""
    cases = []
    for row in store.outcomes():
        if row["action"] != "edited" or not row["final_text"]:
            continue
        cases.append(
            {
                "id": f"feedback-{row['draft_id'][:12]}",
                "message": row["query"],
                "golden": row["final_text"],
                "expect_refusal": bool(row["is_refusal"]),
                "must_include": [],
                "must_not": [],
                "category": row["category"] or "",
                "expected_ids": row["cited_ids"],
                "shop": row["shop"],
                "note": f"from feedback on draft {row['draft_id']}; kefu drafted: {row['draft']}",
                "source": "feedback",
            }
        )
    return cases
