"""``kefu welcome`` and ``kefu phrases``: the shop's auto-reply and quick phrases."""

from __future__ import annotations

import json
from itertools import groupby

import typer

from agent.cli import app, fail
from agent.config import get_settings
from agent.shoptools import phrases, welcome
from agent.workspace import load_workspace


@app.command("welcome")
def welcome_cmd(
    shop: str = typer.Option("default", "--shop", help="Shop profile in the workspace's corpus/shops/."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The shop's welcome auto-reply (first message), checked by the guardrail."""
    result = welcome(load_workspace(get_settings()), shop)
    if as_json:
        typer.echo(result.model_dump_json())
    else:
        typer.echo(result.text)
    if not result.ok:
        rules = ", ".join(f.rule for f in result.violations)
        fail(f"the welcome message of shop {shop!r} breaks tone rules: {rules}")


@app.command("phrases")
def phrases_cmd(
    category: str = typer.Argument(None, help="Only this category (e.g. bargaining)."),
    search: str = typer.Option(None, "--search", help="Only phrases containing this text."),
    shop: str = typer.Option("default", "--shop", help="Shop profile in the workspace's corpus/shops/."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Quick phrases (快捷短语) drawn from the scripts, grouped by category."""
    found = phrases(load_workspace(get_settings()), shop=shop, category=category, search=search)
    if as_json:
        typer.echo(json.dumps([p.model_dump() for p in found], ensure_ascii=False))
        return
    if not found:
        typer.echo("no phrases match", err=True)
        return
    for (name, label), group in groupby(found, key=lambda p: (p.category, p.label)):
        typer.echo(f"[{label}] {name}")
        for p in group:
            mark = " (declines)" if p.declines else ""
            typer.echo(f"  {p.script_id}{mark}: {p.text}")
