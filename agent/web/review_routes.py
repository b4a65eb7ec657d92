"""The supervisor's pages: review queue, one draft with the agent's edit, per-script stats, to-do list.

From an edit a supervisor makes a golden case (labels from the agent's final text, which must
pass the guardrail) or a script change proposal (validated against the workspace before it is
saved). The to-do list groups questions no script answered, each with a new script prefilled.
"""

from __future__ import annotations

import difflib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from agent.corpus import VARIABLE, fill
from agent.errors import KefuError
from agent.web import proposals, queries
from agent.web.render import PREFIX, form_session, read_form, render, signed_in, split_list, state
from agent.web.textdiff import group_similar

router = APIRouter(include_in_schema=False)


@router.get(f"{PREFIX}/review")
async def review_page(
    request: Request,
    shop: str = "",
    category: str = "",
    rule: str = "",
    since: str = "",
    until: str = "",
) -> Response:
    signed_in(request, "supervisor")
    store = state(request).store()
    rows = await run_in_threadpool(store.review_queue, shop, category, rule, since, until)
    choices = await run_in_threadpool(queries.facets, store)
    chosen = {"shop": shop, "category": category, "rule": rule, "since": since, "until": until}
    return render(request, "review.html", rows=rows, choices=choices, chosen=chosen)


KEPT_SHARE = 0.5  # a cited script counts as answered by the agent's text when half its reply is still in it


def kept_scripts(row: dict[str, Any], ws: Any) -> list[str]:
    """The cited scripts whose reply (shop values filled) the agent's final text still mostly holds."""
    final = row["final_text"] or row["draft"]
    try:
        values = ws.shop(row["shop"]).vars
    except KefuError:
        values = {}
    kept = []
    for script_id in row["cited_ids"]:
        script = ws.scripts_by_id.get(script_id)
        if script is None:
            continue
        reply = fill(script.reply, values)
        blocks = difflib.SequenceMatcher(None, reply, final, autojunk=False).get_matching_blocks()
        if reply and sum(b.size for b in blocks) / len(reply) >= KEPT_SHARE:
            kept.append(script_id)
    return kept


def _golden_defaults(row: dict[str, Any], ws: Any) -> dict[str, str]:
    """The form's first values: the scripts the agent's text still answers with, their category."""
    cited = kept_scripts(row, ws)
    category = ws.scripts_by_id[cited[0]].category if cited else (row["category"] or "")
    return {
        "id": f"feedback-{row['draft_id'][:12]}",
        "category": category,
        "expected_ids": ", ".join(cited),
        "must_include": "",
        "group": "basic",
    }


def unfill(text: str, values: dict[str, str], only: set[str] | None = None) -> str:
    """The shop's values in ``text`` back as ``{name}`` (a script serves every shop), for the names in
    ``only`` (the script's own variables) when given; a value two names share, or one under two
    characters, stays as written."""
    names: dict[str, list[str]] = {}
    for name, value in values.items():
        if only is None or name in only:
            names.setdefault(value, []).append(name)
    for value in sorted(names, key=len, reverse=True):
        if len(value) >= 2 and len(names[value]) == 1:
            text = text.replace(value, "{" + names[value][0] + "}")
    return text


def _proposal_defaults(row: dict[str, Any], ws: Any) -> dict[str, str]:
    """The form's first values: the first cited script, the agent's text with shop values as variables."""
    script = next(
        (ws.scripts_by_id[i] for i in kept_scripts(row, ws) or row["cited_ids"] if i in ws.scripts_by_id), None
    )
    try:
        values = ws.shop(row["shop"]).vars
    except KefuError:
        values = {}
    used = set(VARIABLE.findall(script.reply)) if script is not None else set()
    text = unfill(row["final_text"] or row["draft"], values, used)
    return {"script_id": script.id if script else "", "reply": text, "title": script.title if script else ""}


async def _draft_view(request: Request, draft_id: str, status: int = 200, **extra: Any) -> Response:
    web = state(request)
    row = await run_in_threadpool(queries.draft, web.store(), draft_id)
    if row is None:
        return render(request, "denied.html", status=404, message="no such draft")
    ws = await run_in_threadpool(web.workspace)
    history = await run_in_threadpool(web.store().feedback_for, draft_id)
    context: dict[str, Any] = {
        "row": row,
        "history": history,
        "golden": _golden_defaults(row, ws),
        "proposal": _proposal_defaults(row, ws),
        "scripts": {i: ws.scripts_by_id[i] for i in row["cited_ids"] if i in ws.scripts_by_id},
        "result": None,
    }
    context.update(extra)
    return render(request, "draft.html", status=status, **context)


@router.get(f"{PREFIX}/drafts/{{draft_id}}")
async def draft_page(request: Request, draft_id: str) -> Response:
    signed_in(request, "supervisor")
    return await _draft_view(request, draft_id)


@router.post(f"{PREFIX}/drafts/{{draft_id}}/golden")
async def make_golden(request: Request, draft_id: str) -> Response:
    fields = await read_form(request)
    form_session(request, fields, "supervisor")
    web = state(request)
    row = await run_in_threadpool(queries.draft, web.store(), draft_id)
    if row is None or not row["final_text"]:
        return await _draft_view(request, draft_id, status=404)
    ws = await run_in_threadpool(web.workspace)
    case = {
        "id": fields.get("id", "").strip(),
        "message": row["query"],
        "golden": row["final_text"],
        "category": fields.get("category", "").strip(),
        "group": fields.get("group", "basic").strip() or "basic",
        "expected_ids": split_list(fields.get("expected_ids")),
        "must_include": split_list(fields.get("must_include")),
        "shop": row["shop"],
        "note": f"from feedback on draft {draft_id}; kefu drafted: {row['draft']}",
    }
    outcome = await run_in_threadpool(proposals.save_golden, ws, web.config.data_dir, case)
    result = {"kind": "golden", "saved": str(outcome.saved) if outcome.saved else None, "problems": outcome.problems}
    golden = {k: fields.get(k, "") for k in ("id", "category", "expected_ids", "must_include", "group")}
    return await _draft_view(request, draft_id, status=201 if outcome.saved else 422, result=result, golden=golden)


def _script_fields(fields: dict[str, str], base: Any) -> dict[str, Any]:
    """A script as a proposal holds it: the form's fields over the script it changes (if any)."""
    script: dict[str, Any] = base.model_dump(mode="json", exclude_defaults=True) if base is not None else {}
    if base is not None:
        script["category"] = base.category
    for name in ("id", "title", "reply", "category"):
        if fields.get(name, "").strip():
            script[name] = fields[name].strip()
    if "questions" in fields:
        script["questions"] = split_list(fields["questions"])
    if "next_steps" in fields:
        script["next_steps"] = split_list(fields["next_steps"])
    if base is None:
        script.setdefault("source", {"seed": "feedback", "section": "web"})
    return script


@router.post(f"{PREFIX}/drafts/{{draft_id}}/proposal")
async def make_proposal(request: Request, draft_id: str) -> Response:
    fields = await read_form(request)
    session = form_session(request, fields, "supervisor")
    web = state(request)
    ws = await run_in_threadpool(web.workspace)
    base = ws.scripts_by_id.get(fields.get("script_id", ""))
    if base is None:
        result = {"kind": "proposal", "saved": None, "problems": ["script_id: no such script in the workspace"]}
        return await _draft_view(request, draft_id, status=422, result=result)
    script = _script_fields({"reply": fields.get("reply", ""), "title": fields.get("title", "")}, base)
    outcome = await run_in_threadpool(
        lambda: proposals.save_proposal(ws, web.config.data_dir, script, base.id, by=session.name, draft_id=draft_id)
    )
    result = {"kind": "proposal", "saved": str(outcome.saved) if outcome.saved else None, "problems": outcome.problems}
    proposal = {"script_id": base.id, "reply": fields.get("reply", ""), "title": fields.get("title", "")}
    return await _draft_view(request, draft_id, status=201 if outcome.saved else 422, result=result, proposal=proposal)


# --- per-script stats and edits -----------------------------------------------------------------


@router.get(f"{PREFIX}/scripts")
async def scripts_page(request: Request) -> Response:
    signed_in(request, "supervisor")
    web = state(request)
    stats = await run_in_threadpool(queries.script_stats, web.store())
    ws = await run_in_threadpool(web.workspace)
    titles = {s.key: getattr(ws.scripts_by_id.get(s.key), "title", "") for s in stats}
    return render(request, "scripts.html", stats=stats, titles=titles)


@router.get(f"{PREFIX}/scripts/{{script_id}}")
async def script_page(request: Request, script_id: str) -> Response:
    signed_in(request, "supervisor")
    web = state(request)
    edits = await run_in_threadpool(queries.edits_of, web.store(), script_id)
    ws = await run_in_threadpool(web.workspace)
    return render(request, "script.html", script_id=script_id, script=ws.scripts_by_id.get(script_id), edits=edits)


# --- the corpus's to-do list --------------------------------------------------------------------


async def _todo_view(request: Request, status: int = 200, **extra: Any) -> Response:
    web = state(request)
    rows = await run_in_threadpool(queries.handoffs, web.store())
    groups = group_similar([r["query"] for r in rows])
    ws = await run_in_threadpool(web.workspace)
    categories = [(name, c.label) for name, c in ws.corpus.categories.items()]
    listed = await run_in_threadpool(proposals.list_proposals, web.config.data_dir)
    context: dict[str, Any] = {"groups": groups, "categories": categories, "proposals": listed, "result": None}
    context.update(extra)
    return render(request, "todo.html", status=status, **context)


@router.get(f"{PREFIX}/todo")
async def todo_page(request: Request) -> Response:
    signed_in(request, "supervisor")
    return await _todo_view(request)


@router.post(f"{PREFIX}/todo/script")
async def new_script(request: Request) -> Response:
    fields = await read_form(request)
    session = form_session(request, fields, "supervisor")
    web = state(request)
    ws = await run_in_threadpool(web.workspace)
    script = _script_fields(fields, None)
    if script.get("id") in ws.scripts_by_id:
        outcome = proposals.Outcome(None, [f"id: script {script['id']!r} exists already"], [])
    else:
        outcome = await run_in_threadpool(
            lambda: proposals.save_proposal(ws, web.config.data_dir, script, None, by=session.name)
        )
    result = {"kind": "new", "saved": str(outcome.saved) if outcome.saved else None, "problems": outcome.problems}
    return await _todo_view(request, status=201 if outcome.saved else 422, result=result, sent=fields)
