"""The HTTP API for agents' tools: thin over drafting, the guardrail and the store.

    app.py          create_app (uvicorn calls it as a factory) and the lifespan
    services.py     what the routes share: settings, drafter, store, redactor
    routes/         one module per area: drafts and checks, feedback, corpus and shop tools, operations
    schemas.py      request and response bodies (strict)
    shapes.py       the verdict and error JSON shared with the CLI
    errors.py       every error is {"error": {"code", "message"}} with its status
    auth.py         API keys (Authorization: Bearer KEY or X-API-Key), with their roles
    limits.py       per-key rate limits and the cap on concurrent drafts (429 + Retry-After)
    readiness.py    /readyz, cached
    middleware.py   body size, invalid UTF-8 and nesting depth, before any route runs
    logs.py         personal data masked in every log line

``create_app`` is imported lazily so that ``agent.api.shapes`` costs the CLI nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from agent.api.app import create_app

        return create_app
    raise AttributeError(f"module 'agent.api' has no attribute {name!r}")
