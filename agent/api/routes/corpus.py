"""The corpus and shop tools: ``GET /v1/scripts/{id}``, ``/v1/welcome``, ``/v1/phrases``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from agent.api.auth import KeyCaller, Svc
from agent.api.schemas import ERRORS, MAX_SHOP_CHARS
from agent.errors import NotFoundError
from agent.shoptools import Phrase, Welcome, phrases, welcome
from agent.types import Script

router = APIRouter()
Shop = Annotated[str, Query(max_length=MAX_SHOP_CHARS, description="Shop profile name.")]


@router.get("/v1/scripts/{script_id}", response_model=Script, responses=ERRORS, tags=["corpus"])
async def get_script(script_id: str, caller: KeyCaller, svc: Svc) -> JSONResponse:
    """One script of the corpus, as its file has it."""
    script = svc.workspace().script(script_id)
    if script is None:
        raise NotFoundError(f"no script with id {script_id!r}")
    return JSONResponse(script.model_dump(mode="json"))


@router.get("/v1/welcome", response_model=Welcome, responses=ERRORS, tags=["shop tools"])
async def get_welcome(caller: KeyCaller, svc: Svc, shop: Shop = "default") -> JSONResponse:
    """The shop's first-message auto-reply (千牛 自动回复), checked by the guardrail."""
    result = await run_in_threadpool(welcome, svc.workspace(), shop)
    return JSONResponse(result.model_dump())


@router.get("/v1/phrases", response_model=list[Phrase], responses=ERRORS, tags=["shop tools"])
async def get_phrases(
    caller: KeyCaller,
    svc: Svc,
    category: Annotated[str | None, Query(max_length=64)] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    shop: Shop = "default",
) -> JSONResponse:
    """Quick phrases (快捷短语) drawn from the scripts, shop values filled; filter by category and text."""
    found = await run_in_threadpool(phrases, svc.workspace(), shop, category, search)
    return JSONResponse([p.model_dump() for p in found])
