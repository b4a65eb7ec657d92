"""``kefu index [--rebuild]``: bring the script index in step with the corpus."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agent.cli import app
from agent.config import get_settings
from agent.retrieval import make_embedder
from agent.retrieval.chroma import collection_name
from agent.retrieval.service import update_index
from agent.workspace import load_workspace


@app.command("index")
def index_cmd(
    rebuild: bool = typer.Option(False, "--rebuild", help="Drop the index and embed every script again."),
) -> None:
    """Embed new and changed scripts and drop removed ones (only what changed is embedded)."""
    settings = get_settings()
    workspace = load_workspace(settings)
    name = collection_name(make_embedder(settings))
    columns = (TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TextColumn("documents"), TimeElapsedColumn())
    console = Console(stderr=True)
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("embedding", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = update_index(settings, workspace, rebuild=rebuild, progress=advance)
    where = f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else str(settings.index_dir)
    typer.echo(
        f"index {name} at {where}: {report.embedded} embedded, {report.unchanged} unchanged, "
        f"{report.removed} removed ({report.documents} documents) in {report.seconds:.1f}s"
    )
