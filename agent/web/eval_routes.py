"""Eval from the browser: start a suite (progress polled), list runs, compare two, prompt versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from agent.errors import KefuError
from agent.evaluation.compare import compare_runs
from agent.evaluation.runs import Run, load_run
from agent.web.render import PREFIX, api_session, render, signed_in, state
from agent.web.textdiff import char_diff, line_pairs

router = APIRouter(include_in_schema=False)
MAX_CASES_SHOWN = 300


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str = Field(max_length=100)
    limit: int | None = Field(default=None, gt=0, le=10_000)
    backend: str | None = Field(default=None, max_length=20)


@router.get(f"{PREFIX}/eval")
async def eval_page(request: Request) -> Response:
    signed_in(request, "supervisor")
    jobs = state(request).jobs
    runs = await run_in_threadpool(jobs.list_runs)
    running = jobs.running()
    return render(request, "eval.html", suites=jobs.suites(), runs=runs, running=running.public() if running else None)


@router.post(f"{PREFIX}/api/eval/runs")
async def start_run(request: Request, body: StartBody) -> JSONResponse:
    api_session(request, "supervisor")
    try:
        job = state(request).jobs.start(body.suite, body.limit, body.backend)
    except LookupError as exc:
        return JSONResponse({"error": {"code": "not_found", "message": str(exc)}}, status_code=404)
    return JSONResponse(job.public(), status_code=202)


@router.get(f"{PREFIX}/api/eval/jobs/{{job_id}}")
async def job_status(request: Request, job_id: str) -> JSONResponse:
    api_session(request, "supervisor")
    job = state(request).jobs.jobs.get(job_id)
    if job is None:
        return JSONResponse({"error": {"code": "not_found", "message": "no such job"}}, status_code=404)
    return JSONResponse(job.public())


# --- compare ------------------------------------------------------------------------------------


def _text(case: dict[str, Any] | None) -> str:
    if case is None:
        return ""
    draft = case.get("draft") or {}
    return str(draft.get("draft") or case.get("error") or "")


def case_rows(a: Run, b: Run, worse: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """One row per case in both runs: both drafts, the diff between them, and the metrics that moved."""
    cases_a = a.case_map()
    rows = []
    for case_b in b.cases:
        case_id = str(case_b["id"])
        case_a = cases_a.get(case_id)
        if case_a is None:
            continue
        text_a, text_b = _text(case_a), _text(case_b)
        drops = worse.get(case_id, [])
        moved = []
        for name, entry in (case_b.get("metrics") or {}).items():
            va = (case_a.get("metrics") or {}).get(name, {}).get("value")
            vb = entry.get("value")
            if va is not None and vb is not None and abs(vb - va) > 1e-9:
                moved.append({"name": name, "a": va, "b": vb, "worse": any(c.metric == name for c in drops)})
        rows.append(
            {
                "id": case_id,
                "category": case_b.get("category", ""),
                "message": case_b.get("message", ""),
                "golden": case_b.get("golden", ""),
                "a": text_a,
                "b": text_b,
                "diff": char_diff(text_a, text_b),
                "changed": text_a != text_b,
                "worse": bool(drops),
                "drop": min((c.b - c.a for c in drops), default=0.0),
                "moved": moved,
                "metrics": sorted({c.metric for c in drops}),
            }
        )
    rows.sort(key=lambda r: (not r["worse"], r["drop"], not r["changed"], r["id"]))
    return rows


def _compare(runs_dir: Any, a_id: str, b_id: str) -> tuple[Any, list[dict[str, Any]], Run, Run]:
    a, b = load_run(a_id, runs_dir), load_run(b_id, runs_dir)
    comparison = compare_runs(a, b)
    worse: dict[str, list[Any]] = {}
    for change in comparison.worse:
        worse.setdefault(change.case_id, []).append(change)
    return comparison, case_rows(a, b, worse), a, b


@router.get(f"{PREFIX}/eval/compare")
async def compare_page(
    request: Request,
    a: str = "",
    b: str = "",
    show: str = "all",
    metric: str = "",
    category: str = "",
    q: str = "",
) -> Response:
    signed_in(request, "supervisor")
    jobs = state(request).jobs
    runs = await run_in_threadpool(jobs.list_runs)
    context: dict[str, Any] = {"runs": runs, "a": a, "b": b, "show": show, "metric": metric, "category": category}
    context.update(q=q, comparison=None, rows=[], error=None, categories=[], metrics=[], total=0)
    if a and b:
        try:
            comparison, rows, run_a, run_b = await run_in_threadpool(_compare, jobs.runs_dir, a, b)
        except KefuError as exc:
            context["error"] = exc.message
            return render(request, "compare.html", status=404, **context)
        context["categories"] = sorted({r["category"] for r in rows if r["category"]})
        context["metrics"] = sorted({m for r in rows for m in r["metrics"]})
        context["total"] = len(rows)
        if show == "worse":
            rows = [r for r in rows if r["worse"]]
        elif show == "changed":
            rows = [r for r in rows if r["changed"]]
        if metric:
            rows = [r for r in rows if metric in r["metrics"]]
        if category:
            rows = [r for r in rows if r["category"] == category]
        if q:
            rows = [r for r in rows if q in r["message"] or q in r["a"] or q in r["b"] or q in r["id"]]
        context.update(comparison=comparison, rows=rows[:MAX_CASES_SHOWN], shown_of=len(rows))
        context.update(summary_a=run_a.summary, summary_b=run_b.summary)
    return render(request, "compare.html", **context)


# --- prompt versions ----------------------------------------------------------------------------


def default_pair(names: list[str]) -> tuple[str, str]:
    """The two newest versions of the first prompt that has two (``draft.v1``, ``draft.v2``), else one name twice."""
    families: dict[str, list[str]] = {}
    for name in names:
        family, _, version = name.rpartition(".v")
        families.setdefault(family if version.isdigit() else name, []).append(name)
    for versions in families.values():
        if len(versions) > 1:
            ordered = sorted(versions, key=lambda n: int(n.rpartition(".v")[2]))
            return ordered[-2], ordered[-1]
    return (names[0], names[0]) if names else ("", "")


@router.get(f"{PREFIX}/prompts")
async def prompts_page(request: Request, a: str = "", b: str = "") -> Response:
    signed_in(request, "supervisor")
    ws = await run_in_threadpool(state(request).workspace)
    names = sorted(ws.prompts)
    default_a, default_b = default_pair(names)
    a = a if a in ws.prompts else default_a
    b = b if b in ws.prompts else default_b
    rows: list[Any] = []
    if a and b:
        text_a = ws.prompts[a].path.read_text(encoding="utf-8")
        text_b = ws.prompts[b].path.read_text(encoding="utf-8")
        rows = line_pairs(text_a, text_b)
    return render(request, "prompts.html", names=names, a=a, b=b, rows=rows)
