"""API keys: created with a name and a role, stored salted and hashed, verified, revoked.

A key reads ``kefu_<key_id>_<secret>``; only ``key_id`` and an HMAC of the secret are stored,
so the secret cannot be shown again.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal, get_args

from agent.errors import InputError, NotFoundError, StoreError
from agent.store.db import Database, now

Role = Literal["agent", "supervisor"]
KeyStatus = Literal["ok", "unknown", "revoked"]
ROLES: tuple[str, ...] = get_args(Role)
KEY_PREFIX = "kefu"
_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class ApiKey:
    """A key as ``kefu keys list`` shows it (never the secret)."""

    key_id: str
    name: str
    created_at: str
    revoked_at: str | None
    role: Role = "agent"


@dataclass(frozen=True)
class KeyCheck:
    """The answer for a presented key: ``ok``, ``unknown`` (401) or ``revoked`` (403)."""

    status: KeyStatus
    name: str | None = None
    role: Role = "agent"


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode(), hashlib.sha256).digest()


def split_key(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a presented key, or None when it is not shaped like one."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def _role(value: object) -> Role:
    return "supervisor" if value == "supervisor" else "agent"


class Keys(Database):
    """The ``api_keys`` table."""

    def create_key(self, name: str, role: str = "agent") -> str:
        """A new key for ``name`` with ``role``; the returned secret is never stored and cannot be shown again."""
        if not _KEY_NAME.fullmatch(name):
            raise InputError(f"key name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
        if role not in ROLES:
            raise InputError(f"role {role!r}: use agent or supervisor")
        key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_bytes(16)
        try:
            with self.write() as db:
                db.execute(
                    "INSERT INTO api_keys (key_id, name, salt, digest, created_at, revoked_at, role)"
                    " VALUES (?, ?, ?, ?, ?, NULL, ?)",
                    (key_id, name, salt, _digest(salt, secret), now(), role),
                )
        except StoreError as exc:
            if "UNIQUE" in exc.message:
                raise InputError(f"an active key named {name!r} exists: revoke it first or pick another name") from None
            raise
        return f"{KEY_PREFIX}_{key_id}_{secret}"

    def revoke_key(self, name: str) -> None:
        """Revoke the active key of ``name``; NotFoundError when there is none."""
        with self.write() as db:
            cur = db.execute("UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (now(), name))
        if cur.rowcount == 0:
            raise NotFoundError(f"no active key named {name!r} (see kefu keys list)")

    def list_keys(self) -> list[ApiKey]:
        """Every key ever created, oldest first."""
        rows = self.conn().execute(
            "SELECT key_id, name, created_at, revoked_at, role FROM api_keys ORDER BY created_at"
        )
        return [ApiKey(r["key_id"], r["name"], r["created_at"], r["revoked_at"], _role(r["role"])) for r in rows]

    def key_by_id(self, key_id: str) -> KeyCheck | None:
        """The key with ``key_id`` (a session holds the id, never the secret): ``ok`` or ``revoked``; None if none."""
        row = self.conn().execute("SELECT name, revoked_at, role FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        if row is None:
            return None
        return KeyCheck("revoked" if row["revoked_at"] else "ok", row["name"], _role(row["role"]))

    def verify_key(self, token: str) -> KeyCheck:
        """Whether ``token`` is an active key, and whose (constant-time comparison)."""
        parts = split_key(token)
        if parts is None:
            return KeyCheck("unknown")
        key_id, secret = parts
        row = (
            self.conn()
            .execute("SELECT name, salt, digest, revoked_at, role FROM api_keys WHERE key_id = ?", (key_id,))
            .fetchone()
        )
        if row is None or not hmac.compare_digest(_digest(row["salt"], secret), row["digest"]):
            return KeyCheck("unknown")
        return KeyCheck("revoked" if row["revoked_at"] else "ok", row["name"], _role(row["role"]))
