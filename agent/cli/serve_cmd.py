"""``kefu serve`` (the HTTP API), ``kefu keys`` (its API keys) and ``kefu feedback`` (what agents did)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from agent.cli import app, fail
from agent.config import get_settings
from agent.store import export_golden, feedback_stats, open_store

keys_app = typer.Typer(help="API keys of the HTTP API: create, list, revoke.", no_args_is_help=True)
feedback_app = typer.Typer(help="What agents did with the drafts: rates, and golden candidates.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(feedback_app, name="feedback")


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker processes."),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="Log one line per request."),
) -> None:
    """Serve the HTTP API (OpenAPI at /docs); every instance on a host shares the data dir's store."""
    import uvicorn

    open_store(get_settings()).close()  # fail here, in one line, when the store cannot be opened
    # Requests run side by side in threads: one OpenMP thread per embedding call, not one per core
    # each, which oversubscribes the cores (measured: 34 ms a query instead of 340 on a busy 2-core box).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    uvicorn.run(
        "agent.api:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="info",
    )


@keys_app.command("create")
def keys_create(
    name: str = typer.Argument(..., help="Who the key is for, e.g. the agent tool's name."),
    role: str = typer.Option("agent", "--role", help="agent (drafts, feedback) or supervisor (also reviews)."),
) -> None:
    """Create a key and print it once: it is stored hashed and cannot be shown again."""
    key = open_store(get_settings()).create_key(name, role=role)
    typer.echo(key)
    typer.echo(f"{role} key {name!r} created; send it as 'Authorization: Bearer KEY'. It is not shown again.", err=True)


@keys_app.command("revoke")
def keys_revoke(name: str = typer.Argument(..., help="Name of the key to revoke.")) -> None:
    """Revoke the active key of NAME: requests with it get 403 from then on."""
    open_store(get_settings()).revoke_key(name)
    typer.echo(f"key {name!r} revoked")


@keys_app.command("list")
def keys_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every key ever created (names and dates, never the keys)."""
    keys = open_store(get_settings()).list_keys()
    if as_json:
        typer.echo(json.dumps([k.__dict__ for k in keys], ensure_ascii=False))
        return
    if not keys:
        typer.echo("no keys yet: kefu keys create NAME")
    for k in keys:
        state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
        typer.echo(f"{k.name}\t{k.key_id}\tcreated {k.created_at}\t{state}")


def _rate(value: Any) -> str:
    return "-" if value is None else f"{value:.0%}"


def _table(title: str, rows: list[dict[str, Any]]) -> None:
    typer.echo(f"\n{title:<40} drafts reviewed accepted  edited rejected  (share of reviewed)")
    for r in rows:
        rejected = r["rejected"] / r["reviewed"] if r["reviewed"] else None
        typer.echo(
            f"{r['key']:<40} {r['drafts']:>6} {r['reviewed']:>8} {_rate(r['acceptance_rate']):>8}"
            f" {_rate(r['edit_rate']):>7} {_rate(rejected):>8}"
        )


@feedback_app.command("stats")
def feedback_stats_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Acceptance and edit rates, overall, per script cited and per guardrail rule found."""
    stats = feedback_stats(open_store(get_settings()))
    if as_json:
        typer.echo(json.dumps(stats, ensure_ascii=False))
        return
    _table("overall", [stats["total"]])
    _table("per script", stats["scripts"])
    _table("per guardrail rule", stats["rules"])


@feedback_app.command("export")
def feedback_export(
    golden: Path = typer.Option(..., "--golden", help="JSON-lines file to write the candidate cases to."),
) -> None:
    """Write edited drafts as candidate golden cases (golden and labels from what the agent sent) for review."""
    export = export_golden(open_store(get_settings()))
    cases = export.cases
    if export.failed_guardrail:
        typer.echo(f"{len(export.failed_guardrail)} edit(s) left out: the agent's text breaks a tone rule", err=True)
    try:
        with golden.open("w", encoding="utf-8") as out:
            for case in cases:
                out.write(json.dumps(case, ensure_ascii=False) + "\n")
    except OSError as exc:
        fail(f"--golden {golden}: cannot write: {exc.strerror}")
    typer.echo(f"{len(cases)} candidate golden case(s) written to {golden}; review them before adding to eval/")
