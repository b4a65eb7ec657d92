"""The app: ``create_app(settings, drafter)``, which uvicorn calls as a factory (``agent.api:create_app``).

    POST /v1/drafts        a draft for a customer's message (plus the draft_id to send feedback on)
    POST /v1/check         the guardrail's verdict on a text an agent wrote
    GET  /v1/scripts/{id}  one script of the corpus
    POST /v1/feedback      what the agent did with a draft: accepted, edited or rejected
    GET  /v1/welcome       the shop's welcome reply;  GET /v1/phrases  quick phrases
    GET  /v1/review        the review queue             (a supervisor's key)
    GET  /v1/stats         acceptance and edit rates    (a supervisor's key)
    GET  /healthz          the process is alive                         (no key)
    GET  /readyz           workspace, index and store usable (cached)   (details with a key)
    GET  /docs             OpenAPI                                      (no key)

Every other route needs an API key. The lifespan opens the store, starts the workspace watcher
(a broken save keeps the last good snapshot serving) and warms drafting up before the first
request is accepted; shutdown stops the watcher and closes the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from agent.api import logs
from agent.api.errors import install_error_handlers
from agent.api.limits import Limits
from agent.api.middleware import BodyGuard, ProbeFastPath
from agent.api.readiness import Readiness
from agent.api.routes import ROUTERS
from agent.api.services import Services
from agent.config import Settings, get_settings
from agent.drafting.pipeline import Drafter


def create_app(
    settings: Settings | None = None, drafter: Drafter | None = None, limits: Limits | None = None, web: bool = True
) -> FastAPI:
    """The app for ``settings`` (default: the environment's).

    ``drafter`` replaces the configured one (tests pass one with a fake retriever); ``limits``
    replaces the environment's ``KEFU_API_*`` bounds. ``web`` mounts the workbench (``/ui/``) and
    the offline ``/docs``; pass False to mount it yourself (``agent.web.mount_web``) with a config.
    """
    services = Services(settings or get_settings(), drafter, limits or Limits())
    logs.install(services.redactor_callable)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(services.start)
        yield
        await run_in_threadpool(services.stop)

    app = FastAPI(
        title="kefu",
        version="1",
        summary="Draft replies for customer-service agents of Chinese online shops.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.readiness = Readiness(services, services.limits.readyz_interval_s)
    install_error_handlers(app)
    app.add_middleware(BodyGuard, limit=services.settings.max_body_bytes)
    app.add_middleware(ProbeFastPath, fresh=app.state.readiness.fresh)  # outermost: before the body guard
    for router in ROUTERS:
        app.include_router(router)
    if web:
        from agent.web import mount_web  # the workbench's pages, on these services

        mount_web(app, services)
    return app
