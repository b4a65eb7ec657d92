"""The API's routes, one module per area; :data:`ROUTERS` is what the app includes."""

from __future__ import annotations

from agent.api.routes import corpus, drafts, feedback, ops, review

ROUTERS = (drafts.router, feedback.router, corpus.router, review.router, ops.router)
