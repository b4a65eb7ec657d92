"""What every web route shares: the mounted state, templates, sign-in checks and form parsing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from agent.store.keys import Role
from agent.web.evaljobs import EvalJobs
from agent.web.session import Sessions, WebSession, csrf_ok
from agent.web.textdiff import char_diff

HERE = Path(__file__).resolve().parent
PREFIX = "/ui"
MAX_FORM_BYTES = 256 * 1024
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none';"
    " frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass
class WebConfig:
    """Where the supervisor pages read and write; defaults derive from the settings' data dir."""

    suites_dir: Path
    runs_dir: Path
    data_dir: Path


@dataclass
class WebState:
    services: Any  # the API's Services: .settings, .db(), .drafting()
    config: WebConfig
    sessions: Sessions
    jobs: EvalJobs
    env: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(("html",)),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["prefix"] = PREFIX
        self.env.filters["diff"] = char_diff
        self.env.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.0f}%"
        self.env.filters["num"] = lambda v: "—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    def store(self) -> Any:
        return self.services.db()

    def workspace(self) -> Any:
        """The snapshot for one request: the services' (last good one) when they have it."""
        own = getattr(self.services, "workspace", None)
        return own() if callable(own) else self.services.drafting().snapshot()


class WebRedirect(Exception):
    def __init__(self, location: str) -> None:
        self.location = location


class WebDenied(Exception):
    """403 for a signed-in key without the role; 401 for JSON calls without a session or token."""

    def __init__(self, status: int, message: str, json: bool) -> None:
        self.status, self.message, self.json = status, message, json


def state(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    web = state(request)
    session = context.pop("session", None) or getattr(request.state, "web_session", None)
    html = web.env.get_template(template).render(request=request, session=session, **context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def signed_in(request: Request, role: Role | None = None) -> WebSession:
    """The page's session; a redirect to sign-in without one, 403 when the role is missing."""
    web = state(request)
    session = web.sessions.read(request, web.store())
    if session is None:
        raise WebRedirect(f"{PREFIX}/signin")
    if role == "supervisor" and not session.supervisor:
        raise WebDenied(403, "supervisor role required", json=False)
    request.state.web_session = session
    return session


def api_session(request: Request, role: Role | None = None, form_token: str | None = None) -> WebSession:
    """A JSON call's session; state changes (anything but GET) must carry the CSRF token."""
    web = state(request)
    session = web.sessions.read(request, web.store())
    if session is None:
        raise WebDenied(401, "sign in first", json=True)
    if request.method != "GET" and not csrf_ok(session, request, form_token):
        raise WebDenied(403, "missing or wrong CSRF token", json=True)
    if role == "supervisor" and not session.supervisor:
        raise WebDenied(403, "supervisor role required", json=True)
    request.state.web_session = session
    return session


def form_session(request: Request, fields: dict[str, str], role: Role | None = None) -> WebSession:
    """A form post's session: signed in, the role, and the form's CSRF token."""
    session = signed_in(request, role)
    if not csrf_ok(session, request, fields.get("csrf_token")):
        raise WebDenied(403, "missing or wrong CSRF token", json=False)
    return session


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as one value per field (the last wins)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def split_list(value: str | None) -> list[str]:
    """Comma, 、 or newline separated values, trimmed, empties dropped."""
    if not value:
        return []
    for sep in ("\n", "、", "，"):
        value = value.replace(sep, ",")
    return [v.strip() for v in value.split(",") if v.strip()]


async def on_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebRedirect)
    return RedirectResponse(exc.location, status_code=303)


async def on_denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebDenied)
    if exc.json:
        return JSONResponse(
            {"error": {"code": "forbidden" if exc.status == 403 else "unauthorized", "message": exc.message}},
            status_code=exc.status,
        )
    return render(request, "denied.html", status=exc.status, message=exc.message)
