"""Operations: ``GET /healthz`` (alive; anonymous, touches nothing) and ``GET /readyz`` (cached)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from agent.api.auth import MaybeCaller
from agent.api.errors import error_response
from agent.api.readiness import Readiness
from agent.api.schemas import ErrorOut, ReadyOut

router = APIRouter()


@router.get("/healthz", tags=["operations"])
async def healthz() -> dict[str, str]:
    """The process is alive (no key, no work)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadyOut, tags=["operations"], responses={503: {"model": ErrorOut}})
async def readyz(request: Request, caller: MaybeCaller) -> JSONResponse:
    """Ready, degraded (serving the last good workspace while the files on disk are broken) or 503.

    Computed at most once per interval. Details per dependency only for a caller with a key.
    """
    readiness: Readiness = request.app.state.readiness
    fresh = readiness.fresh()
    ready = fresh if fresh is not None else await run_in_threadpool(readiness.get)
    if not ready.serving:
        if caller is None:
            return error_response(503, "not ready")
        problems = "; ".join(f"{name}: {state}" for name, state in ready.checks.items() if state != "ok")
        return error_response(503, problems, checks=ready.checks)
    body: dict[str, object] = {"status": ready.status}
    if caller is not None:
        body["checks"] = ready.checks
    return JSONResponse(body)
