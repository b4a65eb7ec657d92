"""The HTTP API for agents' tools: thin over :func:`draft_reply`, :func:`check` and the store.

    POST /v1/drafts        a draft for a customer's message (plus the draft_id to send feedback on)
    POST /v1/check         the guardrail's verdict on a text an agent wrote
    GET  /v1/scripts/{id}  one script of the corpus
    POST /v1/feedback      what the agent did with a draft: accepted, edited or rejected
    GET  /healthz          the process is alive            (no key)
    GET  /readyz           corpus, index and store usable  (no key)
    GET  /docs             OpenAPI                         (no key)

Every other route needs an API key (``kefu keys create NAME``) as ``Authorization: Bearer KEY``
or ``X-API-Key: KEY``. Every error is ``{"error": {"code", "message"}}`` with its status; no
traceback ever leaves the process. Drafting and checking run in worker threads, and the
retriever is warmed before the first request is accepted.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from agent.config import Settings, get_settings
from agent.corpus import corpus_for
from agent.drafting.pipeline import Drafter, drafter_for
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
from agent.guardrails import check
from agent.retrieval.index import ping as ping_index
from agent.shoptools import Phrase, Welcome, phrases, welcome
from agent.store import Store, open_store
from agent.types import Citation, Finding, Message, Order, Script, Turn

log = logging.getLogger("kefu.api")

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    422: "invalid_request",
    500: "internal_error",
    502: "backend_error",
    503: "not_ready",
}
# Most specific first: the first class an error is an instance of gives its status.
ERROR_STATUS: tuple[tuple[type[KefuError], int], ...] = (
    (MessageTooLongError, 413),
    (InputError, 422),
    (UnknownShopError, 400),
    (NotFoundError, 404),
    (AuthError, 401),
    (BackendError, 502),
    (RetrievalError, 503),
)


# --- request and response bodies -------------------------------------------------------


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


class _Body(BaseModel):
    """A request body: unknown fields and text that is not valid Unicode are refused (422)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if _has_lone_surrogate(data):
            raise ValueError("the body contains a lone surrogate (\\ud800-\\udfff): send valid Unicode text")
        return data


class DraftIn(_Body):
    """The same fields as a line of ``kefu draft --jsonl``."""

    query: str = Field(description="The customer's message.")
    shop: str = Field(default="default", description="Shop profile in corpus/shops/.")
    backend: Literal["script", "openai"] | None = Field(default=None, description="Default: openai when configured.")
    order: Order | None = None
    turns: list[Turn] = Field(default_factory=list)
    id: str | int | None = Field(default=None, description="Echoed back, for the caller's bookkeeping.")


class DraftOut(BaseModel):
    draft_id: str
    id: str | int | None = None
    draft: str
    is_refusal: bool
    status: Literal["ok", "needs_review"]
    citations: list[Citation]
    violations: list[Finding]
    backend: Literal["script", "openai"]
    fallback_reason: str | None
    notes: list[str]
    timings_ms: dict[str, float]


class CheckIn(_Body):
    draft: str = Field(description="The reply to check.")
    query: str | None = Field(default=None, description="The customer's message, when known.")
    declared_refusal: bool | None = Field(default=None, description="Whether the reply declines what was asked.")


class CheckOut(BaseModel):
    ok: bool
    is_refusal: bool
    violations: list[Finding]
    fixed: str | None


class FeedbackIn(_Body):
    draft_id: str = Field(max_length=64)
    action: Literal["accepted", "edited", "rejected"]
    final_text: str | None = Field(default=None, description="What the agent sent; required when edited.")
    reason: str | None = Field(default=None, description="Why; required when rejected.")

    @model_validator(mode="after")
    def _needs_text(self) -> FeedbackIn:
        if self.action == "edited" and not (self.final_text and self.final_text.strip()):
            raise ValueError("final_text is required when action is edited")
        if self.action == "rejected" and not (self.reason and self.reason.strip()):
            raise ValueError("reason is required when action is rejected")
        return self


class FeedbackOut(BaseModel):
    feedback_id: int
    draft_id: str
    action: Literal["accepted", "edited", "rejected"]
    recorded_at: str


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 413, 422, 500, 502, 503)
}


# --- errors ----------------------------------------------------------------------------


def error_response(status: int, message: str, code: str | None = None, **extra: Any) -> JSONResponse:
    body = {"error": {"code": code or STATUS_CODES.get(status, "error"), "message": message}, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def status_for(exc: KefuError) -> int:
    return next((status for cls, status in ERROR_STATUS if isinstance(exc, cls)), 500)


async def _on_kefu_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KefuError)
    status = status_for(exc)
    if status >= 500:
        log.warning("%s %s: %s: %s", request.method, request.url.path, exc.code, exc.message)
    return error_response(status, exc.message, exc.code)


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
    message = exc.detail if isinstance(exc.detail, str) else STATUS_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, message)


async def _on_crash(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "%s %s failed: %s (traceback follows from the server)", request.method, request.url.path, type(exc).__name__
    )
    return error_response(500, "internal error: the server logged the details")


# --- body size -------------------------------------------------------------------------


class BodyLimit:
    """Answer 413 to a request whose body is larger than ``limit`` bytes, before any route runs."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._reject(scope, receive, send, 413 if declared.isdigit() else 400)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._reject(scope, receive, send, 413)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, status: int) -> None:
        message = (
            f"the request body is over the limit of {self.limit} bytes (KEFU_MAX_BODY_BYTES)"
            if status == 413
            else "Content-Length is not a number"
        )
        await error_response(status, message)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> AsgiMessage:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# --- the services the routes call ------------------------------------------------------


@dataclass
class Services:
    """What the routes share: settings, the drafter, the store, and whether drafting is warmed up."""

    settings: Settings
    drafter: Drafter | None = None
    store: Store | None = None
    warm_text: str | None = None
    warm_problem: str | None = "not warmed up yet"

    def start(self) -> None:
        self.store = open_store(self.settings)
        self.warm()

    def db(self) -> Store:
        if self.store is None:
            raise RuntimeError("the store is used before the app started")
        return self.store

    def drafting(self) -> Drafter:
        if self.drafter is None:
            self.drafter = drafter_for(self.settings)
        return self.drafter

    def warm(self) -> None:
        """Load the corpus, open the index, and run one draft and one check, so requests start hot."""
        try:
            corpus = corpus_for(self.settings.corpus_dir)
            self.warm_text = corpus.scripts[0].questions[0]
            draft = self.drafting().draft(Message(text=self.warm_text), "script")
            check(draft.text, query=self.warm_text)
        except Exception as exc:  # reported by /readyz and retried there; the server still starts
            self.warm_problem = f"{exc.code}: {exc.message}" if isinstance(exc, KefuError) else repr(exc)
            log.warning("warm-up failed: %s", self.warm_problem)
            return
        self.warm_problem = None

    def draft(self, body: DraftIn, key_name: str | None) -> dict[str, Any]:
        if body.backend == "openai" and not self.settings.llm_configured:
            raise InputError("backend 'openai' is not configured on this server: omit backend or use 'script'")
        message = Message(text=body.query, shop=body.shop, order=body.order, turns=body.turns)
        draft = self.drafting().draft(message, body.backend)
        draft_id = self.db().record_draft(draft, body.query, body.shop, key_name)
        head: dict[str, Any] = {"draft_id": draft_id} if body.id is None else {"draft_id": draft_id, "id": body.id}
        return {**head, **draft.public()}

    def verdict(self, body: CheckIn) -> dict[str, Any]:
        verdict = check(body.draft, query=body.query, declared_refusal=body.declared_refusal)
        return {
            "ok": verdict.ok,
            "is_refusal": verdict.is_refusal,
            "violations": [f.model_dump() for f in verdict.findings],
            "fixed": verdict.fixed,
        }

    def readiness(self) -> dict[str, str]:
        """One line per dependency: ``ok`` or what is wrong with it."""
        checks = {"corpus": "ok", "index": "ok", "store": "ok"}
        try:
            corpus_for(self.settings.corpus_dir)
        except KefuError as exc:
            checks["corpus"] = exc.message
        if self.warm_problem is not None:
            self.warm()
        elif self.warm_text is not None:
            try:
                self.drafting().retriever().retrieve(self.warm_text, 1)
                ping_index(self.settings)
            except Exception as exc:  # the index went away (a Chroma server down): not ready
                checks["index"] = f"{exc.code}: {exc.message}" if isinstance(exc, KefuError) else repr(exc)
        if self.warm_problem is not None:
            checks["index"] = self.warm_problem
        if not self.db().writable():
            checks["store"] = f"{self.db().path} is not writable"
        return checks


# --- the app ---------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY (kefu keys create NAME)")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def require_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> str:
    """The name of the key the request presents; 401 when missing or unknown, 403 when revoked."""
    token = bearer.credentials if bearer is not None else header
    if not token:
        raise HTTPException(401, "an API key is required: Authorization: Bearer KEY (kefu keys create NAME)")
    checked = _services(request).db().verify_key(token)
    if checked.status == "revoked":
        raise HTTPException(403, f"the API key {checked.name!r} has been revoked")
    if checked.status != "ok" or checked.name is None:
        raise HTTPException(401, "unknown API key")
    return checked.name


KeyName = Annotated[str, Depends(require_key)]
Svc = Annotated[Services, Depends(_services)]


def _routes(app: FastAPI) -> None:
    @app.post("/v1/drafts", response_model=DraftOut, responses=ERRORS, tags=["drafts"])
    async def create_draft(body: DraftIn, key: KeyName, svc: Svc) -> JSONResponse:
        """Draft a reply to a customer's message; keep ``draft_id`` to send feedback on it."""
        return JSONResponse(await run_in_threadpool(svc.draft, body, key))

    @app.post("/v1/check", response_model=CheckOut, responses=ERRORS, tags=["guardrail"])
    async def check_text(body: CheckIn, key: KeyName, svc: Svc) -> JSONResponse:
        """Check a reply against the tone rules; ``fixed`` is a safe rewrite when there is one."""
        return JSONResponse(await run_in_threadpool(svc.verdict, body))

    @app.get("/v1/scripts/{script_id}", response_model=Script, responses=ERRORS, tags=["corpus"])
    async def get_script(script_id: str, key: KeyName, svc: Svc) -> JSONResponse:
        """One script of the corpus, as its file has it."""
        script = (await run_in_threadpool(corpus_for, svc.settings.corpus_dir)).get(script_id)
        if script is None:
            raise NotFoundError(f"no script with id {script_id!r}")
        return JSONResponse(script.model_dump(mode="json"))

    @app.post("/v1/feedback", response_model=FeedbackOut, status_code=201, responses=ERRORS, tags=["feedback"])
    async def send_feedback(body: FeedbackIn, key: KeyName, svc: Svc) -> JSONResponse:
        """Record what the agent did with a draft; stored durably before this answers."""
        record = await run_in_threadpool(
            svc.db().record_feedback, body.draft_id, body.action, body.final_text, body.reason, key
        )
        out = FeedbackOut(
            feedback_id=record.id, draft_id=record.draft_id, action=record.action, recorded_at=record.created_at
        )
        return JSONResponse(out.model_dump(), status_code=201)

    @app.get("/v1/welcome", response_model=Welcome, responses=ERRORS, tags=["shop tools"])
    async def get_welcome(key: KeyName, svc: Svc, shop: str = "default") -> JSONResponse:
        """The shop's first-message auto-reply (千牛 自动回复), checked by the guardrail."""
        result = await run_in_threadpool(welcome, svc.settings.corpus_dir, shop)
        return JSONResponse(result.model_dump())

    @app.get("/v1/phrases", response_model=list[Phrase], responses=ERRORS, tags=["shop tools"])
    async def get_phrases(
        key: KeyName,
        svc: Svc,
        category: str | None = None,
        search: str | None = Query(default=None, max_length=200),
        shop: str = "default",
    ) -> JSONResponse:
        """Quick phrases (快捷短语) drawn from the scripts, shop values filled; filter by category and text."""
        found = await run_in_threadpool(phrases, svc.settings.corpus_dir, shop, category, search)
        return JSONResponse([p.model_dump() for p in found])

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"model": ErrorOut}})
    async def readyz(svc: Svc) -> JSONResponse:
        """The corpus loads, the index answers, and the store takes writes."""
        checks = await run_in_threadpool(svc.readiness)
        problems = [f"{name}: {state}" for name, state in checks.items() if state != "ok"]
        if problems:
            return error_response(503, "; ".join(problems), checks=checks)
        return JSONResponse({"status": "ready", "checks": checks})


def create_app(settings: Settings | None = None, drafter: Drafter | None = None) -> FastAPI:
    """The app for ``settings`` (default: the environment's); uvicorn calls it as a factory.

    ``drafter`` replaces the configured one (tests pass one with a fake retriever).
    """
    services = Services(settings or get_settings(), drafter)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(services.start)
        yield
        services.db().close()

    app = FastAPI(
        title="kefu",
        version="1",
        summary="Draft replies for customer-service agents of Chinese online shops.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.add_exception_handler(KefuError, _on_kefu_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_crash)
    app.add_middleware(BodyLimit, limit=services.settings.max_body_bytes)
    _routes(app)
    return app
