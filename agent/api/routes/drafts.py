"""``POST /v1/drafts`` (a draft for a customer's message) and ``POST /v1/check`` (an agent's text checked)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from agent.api.auth import KeyCaller, Svc
from agent.api.limits import draft_cost
from agent.api.schemas import ERRORS, CheckIn, CheckOut, DraftIn, DraftOut

router = APIRouter()


@router.post("/v1/drafts", response_model=DraftOut, responses=ERRORS, tags=["drafts"])
async def create_draft(body: DraftIn, caller: KeyCaller, svc: Svc) -> JSONResponse:
    """Draft a reply to a customer's message; keep ``draft_id`` to send feedback on it.

    Personal data in the message is masked before drafting and storage. A long message costs
    more of the key's rate limit, and only a few long messages are drafted at once, at a lower CPU
    priority, resting between them (429 + Retry-After).
    """
    chars = body.cost_chars()
    svc.limiter.take(caller.name, draft_cost(chars, svc.limits) - 1)  # one unit was spent by the key check
    long = chars >= svc.limits.long_chars
    with svc.slots.slot(long=long):
        if long:  # on the low-priority threads of long messages
            loop = asyncio.get_running_loop()
            return JSONResponse(await loop.run_in_executor(svc.long_pool, svc.draft, body, caller.name))
        return JSONResponse(await run_in_threadpool(svc.draft, body, caller.name))


@router.post("/v1/check", response_model=CheckOut, responses=ERRORS, tags=["guardrail"])
async def check_text(body: CheckIn, caller: KeyCaller, svc: Svc) -> JSONResponse:
    """Check a reply against the tone rules; ``fixed`` is a safe rewrite when there is one."""
    return JSONResponse(await run_in_threadpool(svc.verdict, body))
