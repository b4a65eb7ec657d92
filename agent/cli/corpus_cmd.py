"""``kefu init``, ``kefu corpus validate`` and ``kefu corpus stats``: the workspace as a whole."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from agent.cli import app, fail
from agent.config import get_settings
from agent.workspace import init_workspace, load_workspace, validate_workspace

corpus_app = typer.Typer(help="Check and describe the workspace's script corpus.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")


@app.command("init")
def init_cmd(
    directory: Path = typer.Argument(..., help="Where to write the starter workspace (corpus/ and prompts/)."),
    force: bool = typer.Option(False, "--force", help="Write into a directory that already has a workspace."),
) -> None:
    """Write a starter workspace (the default corpus, shops, rules and prompts) for a shop to edit."""
    written = init_workspace(directory, force=force)
    typer.echo(f"workspace written: {', '.join(str(p) for p in written)}")
    typer.echo(f'use it with: cd {directory} && kefu draft "..."  (or KEFU_WORKSPACE={directory})')


@corpus_app.command("validate")
def validate_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Check every workspace file as a whole: schema, ids, questions, variables, tone, prompts. Exit 1 on problems."""
    settings = get_settings()
    workspace, problems = validate_workspace(settings)
    if as_json:
        typer.echo(json.dumps({"ok": not problems, "problems": problems, "version": workspace and workspace.version}))
    else:
        for line in problems:
            typer.echo(line, err=True)
    if problems:
        fail(f"{len(problems)} problem(s) in the workspace {settings.workspace}")
    assert workspace is not None
    if not as_json:
        stats = workspace.corpus.stats()
        typer.echo(
            f"ok: {stats['scripts']} scripts, {stats['questions']} questions, {len(stats['categories'])} categories,"
            f" {len(workspace.shops)} shops, {len(workspace.prompts)} prompts (version {workspace.version})"
        )


@corpus_app.command("stats")
def stats_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Counts of scripts, question variants and scripts per category."""
    workspace = load_workspace(get_settings())
    corpus = workspace.corpus
    stats = corpus.stats()
    if as_json:
        typer.echo(json.dumps(stats, ensure_ascii=False))
        return
    typer.echo(f"scripts: {stats['scripts']}  questions: {stats['questions']}  categories: {len(stats['categories'])}")
    for name, count in stats["categories"].items():
        label = corpus.categories[name].label
        typer.echo(f"  {name:<20} {label:<8} {count}")
