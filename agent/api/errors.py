"""Every error is ``{"error": {"code", "message"}}`` with its status; no traceback leaves the process.

:data:`ERROR_STATUS` maps kefu's error classes to statuses (most specific first); framework errors
(validation, 404 and 405 from routing) get the same shape, 405 with its ``Allow`` header, 401 with
``WWW-Authenticate`` and 429 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from agent.api.limits import RateLimitedError
from agent.api.shapes import error_json
from agent.errors import (
    AuthError,
    BackendError,
    InputError,
    KefuError,
    MessageTooLongError,
    NotFoundError,
    RetrievalError,
    UnknownShopError,
)
from agent.store import ConflictError

log = logging.getLogger("kefu.api")

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    502: "backend_error",
    503: "not_ready",
}
# Most specific first: the first class an error is an instance of gives its status.
ERROR_STATUS: tuple[tuple[type[KefuError], int], ...] = (
    (RateLimitedError, 429),
    (ConflictError, 409),
    (MessageTooLongError, 413),
    (InputError, 422),
    (UnknownShopError, 400),
    (NotFoundError, 404),
    (AuthError, 401),
    (BackendError, 502),
    (RetrievalError, 503),
)
# What the framework says when it cannot parse a body (invalid UTF-8 among others).
_PARSE_FAILED = "There was an error parsing the body"


def error_response(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The error JSON with ``status``; ``extra`` adds top-level fields beside ``error``."""
    body = {**error_json(code or STATUS_CODES.get(status, "error"), message), **extra}
    out = dict(headers or {})
    if status == 401:
        out.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status, headers=out or None)


def status_for(exc: KefuError) -> int:
    return next((status for cls, status in ERROR_STATUS if isinstance(exc, cls)), 500)


async def _on_kefu_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KefuError)
    status = status_for(exc)
    if status >= 500:
        log.warning("%s %s: %s: %s", request.method, request.url.path, exc.code, exc.message)
    headers = None
    if isinstance(exc, RateLimitedError):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    return error_response(status, exc.message, exc.code, headers)


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
    return f"{where}: {error.get('msg', 'invalid')}"


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "the body is not valid JSON", "invalid_json")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return error_response(422, "; ".join(_describe(e) for e in errors[:3]) + more)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and exc.detail == _PARSE_FAILED:
        return error_response(400, "the body is not valid JSON (UTF-8 text is required)", "invalid_json")
    message = exc.detail if isinstance(exc.detail, str) else STATUS_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, message, headers=dict(exc.headers or {}))


async def _on_crash(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "%s %s failed: %s (details in the server's traceback)", request.method, request.url.path, type(exc).__name__
    )
    return error_response(500, "internal error: the server logged the details")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the one JSON shape."""
    app.add_exception_handler(KefuError, _on_kefu_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_crash)
