"""Signed, timestamped tokens: :mod:`itsdangerous`'s ``URLSafeTimedSerializer``, or, where that
package is not installed, a stdlib stand-in with the same calls (HMAC-SHA256 over base64url JSON
and a timestamp) so the workbench never fails to start for want of it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

try:
    from itsdangerous import BadSignature, URLSafeTimedSerializer
except ImportError:  # pragma: no cover - exercised only without the dependency

    class BadSignature(Exception):  # type: ignore[no-redef]
        """The token was not signed with this secret and salt, or it expired."""

    class URLSafeTimedSerializer:  # type: ignore[no-redef]
        def __init__(self, secret_key: str, salt: str) -> None:
            self._key = hashlib.sha256(f"{salt}\0{secret_key}".encode()).digest()

        def _sign(self, body: bytes) -> str:
            mac = hmac.new(self._key, body, hashlib.sha256).digest()
            return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

        def dumps(self, obj: Any) -> str:
            payload = base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=")
            body = payload + b"." + str(int(time.time())).encode()
            return body.decode() + "." + self._sign(body)

        def loads(self, token: str, max_age: int | None = None) -> Any:
            try:
                payload, stamp, mac = token.rsplit(".", 2)
            except ValueError:
                raise BadSignature("malformed token") from None
            body = f"{payload}.{stamp}".encode()
            if not hmac.compare_digest(self._sign(body), mac) or not stamp.isdigit():
                raise BadSignature("bad signature")
            if max_age is not None and time.time() - int(stamp) > max_age:
                raise BadSignature("expired")
            try:
                return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            except ValueError:
                raise BadSignature("bad payload") from None


__all__ = ["BadSignature", "URLSafeTimedSerializer"]
