"""Sign-in for the web UI: an API key exchanged once for a signed session cookie, with a CSRF token.

The cookie (``kefu_session``, HttpOnly, SameSite=Strict, Secure over https) holds the key's id,
name and role and a random CSRF token, signed with :mod:`itsdangerous`; never the key's secret.
Each request re-reads the key by id, so revoking a key (or changing its role) ends or changes
its web sessions at once. Every state change must echo the session's CSRF token in the
``X-CSRF-Token`` header or a ``csrf_token`` form field. The sign-in form itself is protected by
a signed pre-session token (``kefu_presign``) of the same kind.

The signing secret is ``KEFU_WEB_SECRET`` when set, else ``DATA_DIR/web-secret`` (created once,
mode 0600), so every ``kefu serve`` worker on a host accepts the same cookies.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from agent.store.keys import Role
from agent.web import queries
from agent.web.signing import BadSignature, URLSafeTimedSerializer

COOKIE = "kefu_session"
PRESIGN_COOKIE = "kefu_presign"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
MAX_AGE_S = 12 * 3600
PRESIGN_MAX_AGE_S = 3600
SECRET_ENV = "KEFU_WEB_SECRET"
SECRET_FILE = "web-secret"


def load_secret(data_dir: Path) -> str:
    """The signing secret: the environment's, else the data dir's file (created on first use)."""
    from_env = os.environ.get(SECRET_ENV)
    if from_env:
        return from_env
    path = data_dir / SECRET_FILE
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker won the race: use its secret
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secret)
    return secret


@dataclass(frozen=True)
class WebSession:
    """Who is signed in: the key's id and name, its role, and this session's CSRF token."""

    key_id: str
    name: str
    role: Role
    csrf: str

    @property
    def supervisor(self) -> bool:
        return self.role == "supervisor"


class Sessions:
    """Issues and reads the session and pre-sign-in cookies for one app."""

    def __init__(self, secret: str) -> None:
        self._session = URLSafeTimedSerializer(secret, salt="kefu.web.session")
        self._presign = URLSafeTimedSerializer(secret, salt="kefu.web.presign")

    # --- the session ---------------------------------------------------------------------

    def issue(self, response: Response, request: Request, key_id: str, name: str, role: Role) -> WebSession:
        session = WebSession(key_id, name, role, secrets.token_urlsafe(24))
        token = self._session.dumps({"k": key_id, "n": name, "r": role, "c": session.csrf})
        _set_cookie(response, request, COOKIE, token, MAX_AGE_S)
        response.delete_cookie(PRESIGN_COOKIE, path="/")
        return session

    def read(self, request: Request, store: Any) -> WebSession | None:
        """The request's session when its cookie is genuine, unexpired, and its key is still active."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._session.loads(raw, max_age=MAX_AGE_S)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "knrc"):
            return None
        key = queries.key_by_id(store, data["k"])
        if key is None or key.revoked:
            return None
        return WebSession(data["k"], key.name, key.role, data["c"])

    @staticmethod
    def clear(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/")

    # --- the sign-in form's token ----------------------------------------------------------

    def presign_token(self, request: Request, response: Response) -> str:
        """The CSRF token of the sign-in form: the cookie's when valid, else a new one set on ``response``."""
        raw = request.cookies.get(PRESIGN_COOKIE)
        if raw:
            try:
                token = self._presign.loads(raw, max_age=PRESIGN_MAX_AGE_S)
                if isinstance(token, str):
                    return token
            except BadSignature:
                pass
        token = secrets.token_urlsafe(24)
        _set_cookie(response, request, PRESIGN_COOKIE, self._presign.dumps(token), PRESIGN_MAX_AGE_S)
        return token

    def presign_ok(self, request: Request, sent: str | None) -> bool:
        raw = request.cookies.get(PRESIGN_COOKIE)
        if not raw or not sent:
            return False
        try:
            token = self._presign.loads(raw, max_age=PRESIGN_MAX_AGE_S)
        except BadSignature:
            return False
        return isinstance(token, str) and hmac.compare_digest(token, sent)


def csrf_ok(session: WebSession, request: Request, form_value: str | None = None) -> bool:
    """Whether the request echoes the session's CSRF token (header, else form field)."""
    sent = request.headers.get(CSRF_HEADER) or form_value
    return bool(sent) and hmac.compare_digest(session.csrf, str(sent))


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def session_key(request: Request) -> str | None:
    """For the API's auth: the key name of a valid web session whose request carries its CSRF token.

    None when the app has no web UI mounted, the cookie is missing or stale, or the token is absent.
    """
    sessions: Sessions | None = getattr(request.app.state, "web_sessions", None)
    services = getattr(request.app.state, "services", None)
    if sessions is None or services is None:
        return None
    session = sessions.read(request, services.db())
    if session is None or not csrf_ok(session, request):
        return None
    return session.name
