"""Mount the web workbench on an app: routes, static files, error pages, offline API docs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.staticfiles import StaticFiles

from agent.config import REPO_ROOT
from agent.web import agent_routes, eval_routes, review_routes
from agent.web.evaljobs import EvalJobs
from agent.web.render import HERE, PREFIX, WebConfig, WebDenied, WebRedirect, WebState, on_denied, on_redirect
from agent.web.session import Sessions, load_secret

if TYPE_CHECKING:
    from agent.retrieval import Embedder, Retriever

STATIC = f"{PREFIX}/static"
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
# Nothing off this server: the docs' inline start-up script is allowed, a CDN image (ReDoc's logo) is not.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'"
)


def default_config(settings: Any) -> WebConfig:
    """Suites and runs of the workspace's ``eval/`` when it has one (the repository's otherwise)."""
    workspace: Path = Path(getattr(settings, "workspace", REPO_ROOT))
    eval_dir = workspace / "eval" if (workspace / "eval" / "suites").is_dir() else REPO_ROOT / "eval"
    return WebConfig(suites_dir=eval_dir / "suites", runs_dir=eval_dir / "runs", data_dir=Path(settings.data_dir))


def _docs_page(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc from the vendored files, replacing FastAPI's CDN pages."""
    kept: list[BaseRoute] = [r for r in app.router.routes if not (isinstance(r, Route) and r.path in DOCS_PATHS)]
    app.router.routes[:] = kept
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} API"

    async def swagger(request: Request) -> HTMLResponse:
        return _docs_page(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=title,
                swagger_js_url=f"{STATIC}/vendor/swagger-ui-bundle.js",
                swagger_css_url=f"{STATIC}/vendor/swagger-ui.css",
                swagger_favicon_url=f"{STATIC}/vendor/favicon.png",
            )
        )

    async def redoc(request: Request) -> HTMLResponse:
        return _docs_page(
            get_redoc_html(
                openapi_url=openapi_url,
                title=title,
                redoc_js_url=f"{STATIC}/vendor/redoc.standalone.js",
                redoc_favicon_url=f"{STATIC}/vendor/favicon.png",
                with_google_fonts=False,
            )
        )

    app.add_route("/docs", swagger, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)


def mount_web(
    app: FastAPI,
    services: Any,
    *,
    config: WebConfig | None = None,
    eval_retriever: Retriever | None = None,
    eval_embedder: Embedder | None = None,
) -> WebState:
    """Add the workbench to ``app``; ``services`` is the API's (``.settings``, ``.db()``, ``.drafting()``).

    ``eval_retriever``/``eval_embedder`` replace the configured ones for eval runs started from
    the page (tests pass fast fakes).
    """
    settings = services.settings
    existing: WebState | None = getattr(app.state, "web", None)
    if existing is not None:  # mounted by the app factory already: only the options change
        if config is not None:
            existing.config = config
        existing.jobs = EvalJobs(existing.config.suites_dir, existing.config.runs_dir, eval_retriever, eval_embedder)
        return existing
    config = config or default_config(settings)
    sessions = Sessions(load_secret(Path(settings.data_dir)))
    jobs = EvalJobs(config.suites_dir, config.runs_dir, eval_retriever, eval_embedder)
    web = WebState(services, config, sessions, jobs)
    app.state.web = web
    app.state.web_sessions = sessions
    app.add_exception_handler(WebRedirect, on_redirect)
    app.add_exception_handler(WebDenied, on_denied)
    _offline_docs(app)
    app.mount(STATIC, StaticFiles(directory=HERE / "static"), name="web-static")
    app.include_router(agent_routes.router)
    app.include_router(review_routes.router)
    app.include_router(eval_routes.router)
    if not any(isinstance(r, Route) and r.path == "/" for r in app.router.routes):

        async def home(request: Request) -> Response:
            return RedirectResponse(f"{PREFIX}/", status_code=307)

        app.add_route("/", home, include_in_schema=False)
    if not any(isinstance(r, Route) and r.path == PREFIX for r in app.router.routes):

        async def ui_root(request: Request) -> Response:
            return RedirectResponse(f"{PREFIX}/", status_code=307)

        app.add_route(PREFIX, ui_root, include_in_schema=False)
    return web
