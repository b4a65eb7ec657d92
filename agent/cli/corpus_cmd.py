"""``kefu corpus validate`` and ``kefu corpus stats``."""

from __future__ import annotations

import json

import typer

from agent.cli import app, fail
from agent.config import get_settings
from agent.corpus import load_corpus, validate

corpus_app = typer.Typer(help="Check and describe the script corpus.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")


@corpus_app.command("validate")
def validate_cmd() -> None:
    """Check every corpus file: schema, ids, questions, variables, tone. Exit 1 on problems."""
    corpus_dir = get_settings().corpus_dir
    corpus, problems = validate(corpus_dir)
    for line in problems:
        typer.echo(line, err=True)
    if problems:
        fail(f"{len(problems)} problem(s) in {corpus_dir}")
    assert corpus is not None
    stats = corpus.stats()
    typer.echo(f"ok: {stats['scripts']} scripts, {stats['questions']} questions, {len(stats['categories'])} categories")


@corpus_app.command("stats")
def stats_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Counts of scripts, question variants and scripts per category."""
    corpus = load_corpus(get_settings().corpus_dir)
    stats = corpus.stats()
    if as_json:
        typer.echo(json.dumps(stats, ensure_ascii=False))
        return
    typer.echo(f"scripts: {stats['scripts']}  questions: {stats['questions']}  categories: {len(stats['categories'])}")
    for name, count in stats["categories"].items():
        label = corpus.categories[name].label
        typer.echo(f"  {name:<20} {label:<8} {count}")
