"""The SQLite file every other store module writes through: connections, transactions, migrations.

One file, ``settings.data_dir / "kefu.db"``, shared by every ``kefu serve`` process on a host:
WAL mode so readers never wait for a writer, ``busy_timeout`` so writers queue instead of
failing, and durable writes (feedback) committed with ``synchronous=FULL``. The file and its
WAL are readable by their owner only (0600), and so is a data directory the store creates (0700).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from agent.errors import StoreError
from agent.store import migrations

BUSY_TIMEOUT_MS = 10_000
FILE_MODE = 0o600
DIR_MODE = 0o700


def now() -> str:
    """The current time as the store writes it (UTC, ISO 8601, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def private_file(path: Path) -> None:
    """Create ``path`` (and its directory) readable by the owner only; tighten them if they exist.

    A shared directory with the sticky bit (``/tmp``) is left as it is.
    """
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    mode = parent.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and not mode & stat.S_ISVTX and parent.stat().st_uid == os.getuid():
        parent.chmod(DIR_MODE)
    if not path.exists():
        # Never open (and close) an existing database file here: closing any descriptor of it drops
        # the POSIX locks every SQLite connection of this process holds on it.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, FILE_MODE))
    for sibling in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if sibling.exists() and sibling.stat().st_mode & 0o077:
            sibling.chmod(FILE_MODE)


class Database:
    """The store's file at ``path``; connections open lazily, one per thread.

    ``redact`` masks personal data in any text before it is written.
    """

    def __init__(self, path: Path, redact: Callable[[str], str], memory: bool = False) -> None:
        self.path = path
        self.redact = redact
        # In memory (the fake of tests): one shared-cache database, alive while a connection is open.
        self._uri = f"file:kefu-{uuid.uuid4().hex}?mode=memory&cache=shared" if memory else None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._private = False

    def _connect(self) -> sqlite3.Connection:
        try:
            with self._lock:
                if not self._private and self._uri is None:
                    private_file(self.path)
                    self._private = True
            target = self._uri or self.path
            conn = sqlite3.connect(
                target,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
                uri=self._uri is not None,
            )
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if self._uri is None:
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
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
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
        with self.write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            done = {row["name"] for row in db.execute("SELECT name FROM _migrations")}
            for fn in migrations.MIGRATIONS:
                if fn.__name__ not in done:
                    fn(db)
                    db.execute("INSERT INTO _migrations VALUES (?, ?)", (fn.__name__, now()))
                    applied.append(fn.__name__)
        if self._uri is None:
            private_file(self.path)  # the WAL exists now
        return applied

    def migrations(self) -> list[str]:
        """The names of the migrations applied, in order."""
        return [row["name"] for row in self.conn().execute("SELECT name FROM _migrations ORDER BY rowid")]

    def writable(self) -> bool:
        """Whether a write lock can be taken right now (for readiness checks; takes the lock)."""
        try:
            with self.write() as db:
                db.execute("SELECT 1 FROM _migrations LIMIT 1")
        except StoreError:
            return False
        return True

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
