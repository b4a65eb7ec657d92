"""Sign-in and the agent's page: draft, check as they type, quick phrases, welcome, feedback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, RedirectResponse, Response

from agent.errors import InputError, KefuError, MessageTooLongError, NotFoundError, UnknownShopError
from agent.guardrails import check
from agent.shoptools import phrases, welcome
from agent.store.keys import Role, split_key
from agent.types import Draft, Message, Order, Turn
from agent.web import queries
from agent.web.render import PREFIX, api_session, read_form, render, signed_in, state
from agent.web.session import csrf_ok

router = APIRouter(include_in_schema=False)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DraftBody(_In):
    query: str = Field(max_length=20_000)
    shop: str = "default"
    order: Order | None = None
    turns: list[Turn] = Field(default_factory=list, max_length=50)


class CheckBody(_In):
    draft: str = Field(max_length=20_000)
    query: str | None = Field(default=None, max_length=20_000)


class FeedbackBody(_In):
    draft_id: str = Field(max_length=64)
    action: Literal["accepted", "edited", "rejected"]
    final_text: str | None = Field(default=None, max_length=20_000)
    reason: str | None = Field(default=None, max_length=2_000)
    idempotency_key: str | None = Field(default=None, max_length=128)
    revise: bool = False


def error_json(exc: KefuError) -> JSONResponse:
    status = 500
    for cls, code in ((MessageTooLongError, 413), (UnknownShopError, 400), (NotFoundError, 404), (InputError, 422)):
        if isinstance(exc, cls):
            status = code
            break
    if exc.code == "conflict":
        status = 409
    return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=status)


# --- sign-in ------------------------------------------------------------------------------


@router.get(f"{PREFIX}/signin")
async def signin_page(request: Request) -> Response:
    holder = Response()
    token = state(request).sessions.presign_token(request, holder)
    return _with_token(request, holder, token, None)


def _with_token(request: Request, response: Response, token: str, error: str | None, status: int = 200) -> Response:
    page = render(request, "signin.html", status=status, csrf=token, error=error)
    for name, value in response.headers.items():
        if name == "set-cookie":
            page.headers.append("set-cookie", value)
    return page


@router.post(f"{PREFIX}/signin")
async def signin(request: Request) -> Response:
    """Exchange an API key (form field, never a URL) for a session cookie."""
    web = state(request)
    fields = await read_form(request)
    if not web.sessions.presign_ok(request, fields.get("csrf_token")):
        blank = Response()
        token = web.sessions.presign_token(request, blank)
        return _with_token(request, blank, token, "csrf", status=403)
    token = fields.get("api_key", "").strip()
    checked = await run_in_threadpool(web.store().verify_key, token) if token else None
    parts = split_key(token) if token else None
    key_id = parts[0] if parts is not None else None
    if checked is None or checked.status != "ok" or checked.name is None or key_id is None:
        blank = Response()
        again = web.sessions.presign_token(request, blank)
        reason = "revoked" if checked is not None and checked.status == "revoked" else "unknown"
        return _with_token(request, blank, again, reason, status=401)
    role: Role = "supervisor" if getattr(checked, "role", "agent") == "supervisor" else "agent"
    response = RedirectResponse(f"{PREFIX}/review" if role == "supervisor" else f"{PREFIX}/", status_code=303)
    web.sessions.issue(response, request, key_id, checked.name, role)
    return response


@router.post(f"{PREFIX}/signout")
async def signout(request: Request) -> Response:
    fields = await read_form(request)
    session = signed_in(request)
    response = RedirectResponse(f"{PREFIX}/signin", status_code=303)
    if csrf_ok(session, request, fields.get("csrf_token")):
        state(request).sessions.clear(response)
    return response


# --- the agent's page ---------------------------------------------------------------------------


@router.get(f"{PREFIX}/")
async def agent_page(request: Request) -> Response:
    session = signed_in(request)
    ws = await run_in_threadpool(state(request).workspace)
    categories = [(name, c.label) for name, c in ws.corpus.categories.items()]
    return render(request, "agent.html", session=session, shops=ws.shop_names, categories=categories)


def _citations(draft: Draft, ws: Any) -> list[dict[str, Any]]:
    out = []
    for citation in draft.citations:
        script = ws.scripts_by_id.get(citation.id)
        out.append(
            {
                **citation.model_dump(),
                "title": script.title if script is not None else citation.id,
                "next_steps": list(script.next_steps) if script is not None else [],
            }
        )
    return out


def _message(body: DraftBody) -> Message:
    """The message to draft; the pipeline masks its personal data before any backend sees it."""
    return Message(text=body.query, shop=body.shop, order=body.order, turns=list(body.turns))


def _draft(request: Request, body: DraftBody, key_name: str) -> dict[str, Any]:
    web = state(request)
    ws = web.workspace()
    message = _message(body)
    draft = web.services.drafting().draft(message, None)
    draft_id = web.store().record_draft(draft, message.text, body.shop, key_name)
    return {"draft_id": draft_id, **draft.public(), "citations": _citations(draft, ws)}


@contextmanager
def _bounded(services: Any, key_name: str, body: DraftBody) -> Iterator[None]:
    """The API's bounds on drafting, when the services have them: the key's rate and the draft slots."""
    limiter, slots, limits = (getattr(services, n, None) for n in ("limiter", "slots", "limits"))
    chars = len(body.query) + sum(len(t.text) for t in body.turns)
    if limiter is not None and limits is not None:
        limiter.take(key_name, 1.0 + chars // max(1, int(getattr(limits, "chars_per_unit", 1000))))
    if slots is None or limits is None:
        yield
        return
    with slots.slot(long=chars >= int(getattr(limits, "long_chars", 10**9))):
        yield


@router.post(f"{PREFIX}/api/draft")
async def draft_api(request: Request, body: DraftBody) -> JSONResponse:
    session = api_session(request)
    try:
        with _bounded(state(request).services, session.name, body):
            return JSONResponse(await run_in_threadpool(_draft, request, body, session.name))
    except KefuError as exc:
        response = error_json(exc)
        retry = getattr(exc, "retry_after_s", None)
        if exc.code == "rate_limited" and retry is not None:
            response.status_code = 429
            response.headers["Retry-After"] = str(max(1, round(float(retry))))
        return response


def _verdict(request: Request, body: CheckBody) -> dict[str, Any]:
    ws = state(request).workspace()
    verdict = check(body.draft, rules=ws.tone, query=body.query or None)
    return {
        "ok": verdict.ok,
        "is_refusal": verdict.is_refusal,
        "violations": [f.model_dump() for f in verdict.findings],
        "fixed": verdict.fixed,
    }


@router.post(f"{PREFIX}/api/check")
async def check_api(request: Request, body: CheckBody) -> JSONResponse:
    """The same answer as /v1/check, for the signed-in page (cookie + CSRF header instead of a key)."""
    api_session(request)
    return JSONResponse(await run_in_threadpool(_verdict, request, body))


@router.post(f"{PREFIX}/api/feedback")
async def feedback_api(request: Request, body: FeedbackBody) -> JSONResponse:
    session = api_session(request)
    store = state(request).store()
    final = body.final_text
    try:
        if body.action == "accepted" and final is None:
            final = (await run_in_threadpool(store.get_draft, body.draft_id))["draft"]
        record = await run_in_threadpool(
            queries.record_feedback,
            store,
            body.draft_id,
            body.action,
            final,
            body.reason,
            session.name,
            body.idempotency_key,
            body.revise,
        )
    except KefuError as exc:
        return error_json(exc)
    out = {
        "feedback_id": record.id,
        "draft_id": record.draft_id,
        "action": record.action,
        "recorded_at": record.created_at,
        "revision": getattr(record, "revision", 1),
    }
    return JSONResponse(out, status_code=201)


@router.get(f"{PREFIX}/api/phrases")
async def phrases_api(
    request: Request, shop: str = "default", category: str | None = None, search: str | None = None
) -> JSONResponse:
    api_session(request)
    ws = await run_in_threadpool(state(request).workspace)
    try:
        found = phrases(ws, shop, category or None, (search or "")[:200] or None)
    except KefuError as exc:
        return error_json(exc)
    return JSONResponse([p.model_dump() for p in found[:100]])


@router.get(f"{PREFIX}/api/welcome")
async def welcome_api(request: Request, shop: str = "default") -> JSONResponse:
    api_session(request)
    ws = await run_in_threadpool(state(request).workspace)
    try:
        return JSONResponse(welcome(ws, shop).model_dump())
    except KefuError as exc:
        return error_json(exc)
