"""The API's routes, one module per area; :data:`ROUTERS` is what the app includes."""

from __future__ import annotations

from agent.api.routes import corpus, drafts, feedback, ops

ROUTERS = (drafts.router, feedback.router, corpus.router, ops.router)
