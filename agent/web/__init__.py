"""The web workbench: an agent's drafting page and a supervisor's review, corpus and eval pages.

    mount_web(app, services)   adds the pages under /ui, their static files, and offline /docs and /redoc

Server-rendered (Jinja2 templates in ``templates/``) with a little vanilla JS (``static/``), no
build step and nothing from a CDN: Swagger UI and ReDoc are vendored in ``static/vendor/``.
Sign-in exchanges an API key for a signed session cookie (:mod:`agent.web.session`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.web.mount import mount_web

__all__ = ["mount_web"]


def __getattr__(name: str) -> Any:
    if name == "mount_web":
        from agent.web.mount import mount_web

        return mount_web
    raise AttributeError(f"module 'agent.web' has no attribute {name!r}")
