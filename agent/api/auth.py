"""API keys on requests: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` (``kefu keys create NAME``);
or, from the web workbench's pages, its session cookie with the matching ``X-CSRF-Token`` header.

:func:`require_key` answers 401 for a missing or unknown key and 403 for a revoked one, spends one
unit of the key's rate limit, and gives the route a :class:`Caller`. :func:`optional_key` is for
routes that answer anonymous callers too, with less (``/readyz``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from agent.api.services import Services
from agent.store import Role

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY (kefu keys create NAME)")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the key's name and role."""

    name: str
    role: Role = "agent"


def services(request: Request) -> Services:
    """The app's shared services."""
    found: Services = request.app.state.services
    return found


def _token(bearer: HTTPAuthorizationCredentials | None, header: str | None) -> str | None:
    return bearer.credentials if bearer is not None else header


def _verify(svc: Services, token: str) -> Caller:
    checked = svc.db().verify_key(token)
    if checked.status == "revoked":
        raise HTTPException(403, f"the API key {checked.name!r} has been revoked")
    if checked.status != "ok" or checked.name is None:
        raise HTTPException(401, "unknown API key")
    return Caller(checked.name, checked.role)


async def require_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> Caller:
    """The caller presenting a valid key; 401 when missing or unknown, 403 when revoked, 429 when over its rate."""
    token = _token(bearer, header)
    svc = services(request)
    caller = _verify(svc, token) if token else _web_session(request, svc)
    if caller is None:
        raise HTTPException(401, "an API key is required: Authorization: Bearer KEY (kefu keys create NAME)")
    svc.limiter.take(caller.name)
    return caller


def _web_session(request: Request, svc: Services) -> Caller | None:
    """The caller of a signed-in web workbench page (session cookie plus its CSRF token), if any."""
    if getattr(request.app.state, "web_sessions", None) is None:
        return None
    from agent.web.session import session_key  # only when the workbench is mounted

    name = session_key(request)
    if name is None:
        return None
    roles = [k.role for k in svc.db().list_keys() if k.name == name and k.revoked_at is None]
    return Caller(name, roles[0] if roles else "agent")


async def optional_key(request: Request) -> Caller | None:
    """The caller when a valid key is presented, else None (never an error; not a security scheme)."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    token = credentials.strip() if scheme.lower() == "bearer" else request.headers.get("x-api-key")
    if not token:
        return None
    checked = services(request).db().verify_key(token)
    return Caller(checked.name, checked.role) if checked.status == "ok" and checked.name else None


async def require_supervisor(caller: Annotated[Caller, Depends(require_key)]) -> Caller:
    """A caller whose key has the supervisor role; 403 for an agent's key."""
    if caller.role != "supervisor":
        raise HTTPException(403, f"the key {caller.name!r} is an agent's: this needs a supervisor's key (--role)")
    return caller


KeyCaller = Annotated[Caller, Depends(require_key)]
SupervisorCaller = Annotated[Caller, Depends(require_supervisor)]
MaybeCaller = Annotated[Caller | None, Depends(optional_key)]
Svc = Annotated[Services, Depends(services)]
