"""``kefu draft``: one message from the command line, or JSON lines from stdin."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from agent.api.shapes import error_line
from agent.cli import app, fail
from agent.datafile import field_errors
from agent.drafting.backends import backend_names
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


def _parse_turn(raw: str) -> Turn:
    role, sep, text = raw.partition(":")
    role = role.strip().lower()
    if not sep or role not in ("customer", "agent"):
        raise InputError(f"--turn {raw[:40]!r}: write it as customer:TEXT or agent:TEXT")
    return Turn(role=role, text=text.strip())


def _load_turns(raw_turns: list[str] | None, path: Path | None) -> list[Turn]:
    """Earlier turns, oldest first: ``--turns FILE`` (JSON list or lines of {role, text}), then each ``--turn``."""
    turns: list[Turn] = []
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(f"--turns {path}: cannot read: {exc.strerror}") from None
        try:
            lines = [x for x in text.splitlines() if x.strip()]
            items = json.loads(text) if text.startswith("[") else [json.loads(x) for x in lines]
            turns.extend(Turn.model_validate(item) for item in items)
        except json.JSONDecodeError as exc:
            raise InputError(f"--turns {path}: not JSON: {exc.msg} at line {exc.lineno}") from None
        except ValidationError as exc:
            raise InputError(f"--turns {path}: {next(field_errors(exc))}") from None
    turns.extend(_parse_turn(t) for t in raw_turns or [])
    return turns


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
        return error_line(None, "invalid_json", f"not JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(req, dict):
        return error_line(None, "invalid_input", "each line must be a JSON object")
    rid = req.get("id")
    query = req.get("query")
    if not isinstance(query, str):
        return error_line(rid, "invalid_input", "field query: a string is required")
    try:
        order = Order.model_validate(req["order"]) if req.get("order") is not None else None
        turns = [Turn.model_validate(t) for t in req.get("turns") or []]
        draft = draft_reply(query, shop=str(req.get("shop") or default_shop), backend=backend, order=order, turns=turns)
    except ValidationError as exc:
        return error_line(rid, "invalid_input", next(field_errors(exc)))
    except KefuError as exc:
        return error_line(rid, exc.code, exc.message)
    return {"id": rid, **draft.public()}


@app.command("draft")
def draft_cmd(
    message: str = typer.Argument(None, help="The customer's message (omit with --jsonl)."),
    shop: str = typer.Option("default", "--shop", help="Shop profile in corpus/shops/."),
    backend: str = typer.Option(
        None,
        "--backend",
        help="script (offline), openai or another registered backend; default: openai when configured.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the draft as JSON."),
    jsonl: bool = typer.Option(False, "--jsonl", help='Read {"id","query","shop"?} lines from stdin.'),
    order: Path = typer.Option(None, "--order", help="JSON file with the order's state."),
    turn: list[str] = typer.Option(None, "--turn", help='An earlier turn, oldest first: "customer:…" or "agent:…".'),
    turns_file: Path = typer.Option(None, "--turns", help="JSON file of earlier turns [{role, text}, …]."),
) -> None:
    """Draft a reply to a customer's message (with earlier turns of the chat, when given)."""
    names = backend_names()
    if backend is not None and backend not in names:
        fail(f"--backend must be one of {', '.join(names)}, not {backend!r}", 2)
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
    turns = _load_turns(turn, turns_file)
    draft = draft_reply(message, shop=shop, backend=backend, order=_load_order(order), turns=turns)
    if as_json:
        typer.echo(_dump(draft.public()))
    else:
        _print_human(draft)
