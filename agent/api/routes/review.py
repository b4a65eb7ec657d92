"""What supervisors read (a supervisor's key, else 403): ``GET /v1/review`` and ``GET /v1/stats``.

Everything shown was masked before it was stored: no personal data leaves through these routes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from agent.api.auth import SupervisorCaller, Svc
from agent.api.schemas import ERRORS, MAX_SHOP_CHARS
from agent.store import feedback_stats

router = APIRouter()
Date = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")]


class ReviewItem(BaseModel):
    draft_id: str
    created_at: str
    shop: str
    query: str
    draft: str
    status: str
    category: str | None
    cited_ids: list[str]
    rule_ids: list[str]
    key_name: str | None
    action: str | None
    final_text: str | None
    reason: str | None
    revision: int | None


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in ReviewItem.model_fields}


@router.get("/v1/review", response_model=list[ReviewItem], responses=ERRORS, tags=["supervisors"])
async def review_queue(
    caller: SupervisorCaller,
    svc: Svc,
    shop: Annotated[str | None, Query(max_length=MAX_SHOP_CHARS)] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    rule: Annotated[str | None, Query(max_length=64)] = None,
    since: Date = None,
    until: Date = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONResponse:
    """Drafts kefu marked needs_review or their agent edited, newest first; filters are ANDed."""
    rows = await run_in_threadpool(
        lambda: svc.db().review_queue(shop=shop, category=category, rule=rule, since=since, until=until, limit=limit)
    )
    return JSONResponse([_item(r) for r in rows])


@router.get("/v1/stats", responses=ERRORS, tags=["supervisors"])
async def stats(caller: SupervisorCaller, svc: Svc) -> JSONResponse:
    """Acceptance and edit rates overall, per cited script and per guardrail rule (as ``kefu feedback stats``)."""
    return JSONResponse(await run_in_threadpool(feedback_stats, svc.db()))
