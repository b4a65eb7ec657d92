"""``POST /v1/feedback``: what the agent did with a draft it was served (accepted, edited, rejected).

Once per draft per key: a second feedback is 409 unless it says ``revise`` (then it is the next
revision); a retry with the same idempotency key (body ``idempotency_key`` or header
``Idempotency-Key``) answers the stored record with 200 instead of storing it twice.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from agent.api.auth import KeyCaller, Svc
from agent.api.schemas import ERRORS, MAX_ID_CHARS, FeedbackIn, FeedbackOut
from agent.errors import InputError

router = APIRouter()


@router.post("/v1/feedback", response_model=FeedbackOut, status_code=201, responses=ERRORS, tags=["feedback"])
async def send_feedback(
    body: FeedbackIn,
    caller: KeyCaller,
    svc: Svc,
    idempotency_key: Annotated[str | None, Header(max_length=MAX_ID_CHARS)] = None,
) -> JSONResponse:
    """Record what the agent did with a draft; stored durably before this answers."""
    key = body.idempotency_key or idempotency_key
    if body.idempotency_key and idempotency_key and body.idempotency_key != idempotency_key:
        raise InputError("idempotency_key in the body and the Idempotency-Key header differ")
    record = await run_in_threadpool(
        lambda: svc.db().record_feedback(
            body.draft_id,
            body.action,
            body.final_text,
            body.reason,
            caller.name,
            revise=body.revise,
            idempotency_key=key,
        )
    )
    out = FeedbackOut(
        feedback_id=record.id,
        draft_id=record.draft_id,
        action=record.action,
        revision=record.revision,
        replayed=record.replayed,
        recorded_at=record.created_at,
    )
    return JSONResponse(out.model_dump(), status_code=200 if record.replayed else 201)
