"""``kefu draft``: one message from the command line, or JSON lines from stdin."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from agent.cli import app, fail
from agent.datafile import field_errors
from agent.drafting.pipeline import draft_reply
from agent.errors import InputError, KefuError
from agent.types import Draft, Order, Turn


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _load_order(path: Path | None) -> Order | None:
    if path is None:
        return None
    try:
        return Order.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"--order {path}: cannot read: {exc.strerror}") from None
    except ValidationError as exc:
        raise InputError(f"--order {path}: {next(field_errors(exc))}") from None


def _print_human(draft: Draft) -> None:
    typer.echo(draft.text)
    cited = ", ".join(c.id for c in draft.citations) or "none"
    typer.echo(f"\n[{draft.status}] backend={draft.backend} refusal={draft.is_refusal} scripts={cited}", err=True)
    for f in draft.findings:
        typer.echo(f"  {f.rule} {f.start}-{f.end} {f.text!r}: {f.message}", err=True)
    for note in draft.notes + ([f"fallback: {draft.fallback_reason}"] if draft.fallback_reason else []):
        typer.echo(f"  note: {note}", err=True)


def _jsonl_line(line: str, default_shop: str, backend: str | None) -> dict[str, Any]:
    try:
        req = json.loads(line)
    except json.JSONDecodeError as exc:
        return {"id": None, "error": {"code": "invalid_json", "message": f"not JSON: {exc.msg} at column {exc.colno}"}}
    if not isinstance(req, dict):
        return {"id": None, "error": {"code": "invalid_input", "message": "each line must be a JSON object"}}
    rid = req.get("id")
    query = req.get("query")
    if not isinstance(query, str):
        return {"id": rid, "error": {"code": "invalid_input", "message": "field query: a string is required"}}
    try:
        order = Order.model_validate(req["order"]) if req.get("order") is not None else None
        turns = [Turn.model_validate(t) for t in req.get("turns") or []]
        draft = draft_reply(query, shop=str(req.get("shop") or default_shop), backend=backend, order=order, turns=turns)
    except ValidationError as exc:
        return {"id": rid, "error": {"code": "invalid_input", "message": next(field_errors(exc))}}
    except KefuError as exc:
        return {"id": rid, "error": {"code": exc.code, "message": exc.message}}
    return {"id": rid, **draft.public()}


@app.command("draft")
def draft_cmd(
    message: str = typer.Argument(None, help="The customer's message (omit with --jsonl)."),
    shop: str = typer.Option("default", "--shop", help="Shop profile in corpus/shops/."),
    backend: str = typer.Option(None, "--backend", help="script (offline) or openai; default: openai when configured."),
    as_json: bool = typer.Option(False, "--json", help="Print the draft as JSON."),
    jsonl: bool = typer.Option(False, "--jsonl", help='Read {"id","query","shop"?} lines from stdin.'),
    order: Path = typer.Option(None, "--order", help="JSON file with the order's state."),
) -> None:
    """Draft a reply to a customer's message."""
    if backend not in (None, "script", "openai"):
        fail(f"--backend must be 'script' or 'openai', not {backend!r}", 2)
    if jsonl:
        if message is not None:
            fail("give either a MESSAGE or --jsonl, not both", 2)
        for line in sys.stdin:
            if line.strip():
                typer.echo(_dump(_jsonl_line(line, shop, backend)))
                sys.stdout.flush()
        return
    if message is None:
        fail("a MESSAGE is required (or --jsonl to read JSON lines from stdin)", 2)
    draft = draft_reply(message, shop=shop, backend=backend, order=_load_order(order))
    if as_json:
        typer.echo(_dump(draft.public()))
    else:
        _print_human(draft)
