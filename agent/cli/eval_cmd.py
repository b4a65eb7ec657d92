"""``kefu eval run | compare | report``: the supervisor's eval harness, thin over agent.evaluation."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.cli import app, fail
from agent.config import BACKENDS_DEFAULT, LLM_BACKEND
from agent.evaluation.compare import Comparison, baseline_from, below_baseline, compare_runs
from agent.evaluation.estimate import Estimate, estimate_suite
from agent.evaluation.metrics import METRICS
from agent.evaluation.report import write_report
from agent.evaluation.runner import RunOptions, run_suite
from agent.evaluation.runs import DEFAULT_RUNS_DIR, Run, load_run
from agent.evaluation.suite import load_suite
from agent.evaluation.summary import headline

eval_app = typer.Typer(help="Evaluate drafts against the golden set: run suites, compare runs, write reports.")
app.add_typer(eval_app, name="eval")

RUNS_DIR_HELP = "Where runs are written and looked up."


class _RichReporter:
    """A progress bar per run, advanced as each case finishes."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None

    def start(self, label: str, total: int) -> None:
        self.task = self.progress.add_task(label, total=total)

    def advance(self, record: dict[str, Any]) -> None:
        self.progress.advance(self.task)


def _console() -> Console:
    """Piped output gets a wide console: rich's 80-column default cut the tables short."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}" if unit == "ms" else f"{value:.3f}"


def _summary_table(runs: list[Run]) -> Table:
    table = Table(title="eval summary")
    table.add_column("metric")
    for run in runs:
        s = run.summary
        split = f"{s['split']} " if s.get("split") else ""
        table.add_column(
            split + f"{s['backend']}" + (f" {s['prompt_version']}" if s.get("prompt_version") else ""), justify="right"
        )
    for name, entry in runs[0].summary["metrics"].items():
        unit = entry.get("unit", "")
        label = f"{name} ({unit})" if unit else name
        label += " (median)" if METRICS.get(name) is not None and METRICS[name].aggregate == "median" else ""
        table.add_row(label, *[_fmt(headline(r.summary["metrics"].get(name, {})), unit) for r in runs])
    for key in ("cases", "errors", "needs_review", "fallbacks", "llm_calls", "cache_hits", "wall_s"):
        table.add_row(key, *[str(r.summary.get(key)) for r in runs], style="dim")
    return table


def _estimate_table(estimates: list[Estimate]) -> Table:
    table = Table(title="dry run: nothing was called", caption="tokens: prompt exact (tiktoken), completion at most")
    table.add_column("run", no_wrap=True)
    for column in ("cases", "calls", "cached", "prompt tok", "max out tok", "+revise"):
        table.add_column(column, justify="right", no_wrap=True)
    for e in estimates:
        numbers = (e.cases, e.llm_calls, e.cached_calls, e.prompt_tokens, e.max_completion_tokens, e.max_revision_calls)
        table.add_row(e.label, *map(str, numbers))
    return table


@eval_app.command("run")
def run_cmd(
    suite_path: Path = typer.Argument(..., metavar="SUITE", help="A suite file, e.g. eval/suites/script.yaml."),
    backend: str = typer.Option(None, "--backend", help="Run only this backend: script, direct or openai."),
    prompt: list[str] = typer.Option(None, "--prompt", help="Prompt version(s) for the openai backend, e.g. draft.v2."),
    limit: int = typer.Option(None, "--limit", help="Only the first N cases."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Call the LLM even for answers already cached."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Estimate calls and tokens; call nothing."),
    concurrency: int = typer.Option(None, "--concurrency", min=1, max=64, help="Cases drafted at once."),
    runs_dir: Path = typer.Option(DEFAULT_RUNS_DIR, "--runs-dir", help=RUNS_DIR_HELP),
) -> None:
    """Run a suite on its golden set; write eval/runs/RUN_ID/ and print a summary."""
    known = (BACKENDS_DEFAULT, "direct", LLM_BACKEND)
    if backend not in (None, *known):
        fail(f"--backend must be one of {', '.join(known)}, not {backend!r}", 2)
    suite = load_suite(suite_path)
    if prompt and LLM_BACKEND not in [name for name, _ in suite.variants(backend)]:
        runs_what = ", ".join(sorted({name for name, _ in suite.variants(backend)}))
        fail(
            f"--prompt chooses the {LLM_BACKEND} backend's prompt, and {suite_path} runs {runs_what} only:"
            f" add {LLM_BACKEND} to the suite's backends or pass --backend {LLM_BACKEND}",
            2,
        )
    options = RunOptions(backend, prompt or None, limit, not no_cache, concurrency, runs_dir)
    console = _console()
    if dry_run:
        console.print(_estimate_table(estimate_suite(suite, options)))
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        runs = run_suite(suite, options, _RichReporter(progress))
    console.print(_summary_table(runs))
    failures: list[str] = []
    for run in runs:
        console.print(f"run: {run.path}")
        failures.extend(f"{run.run_id}: {f}" for f in run.summary["threshold_failures"])
    for failure in failures:
        console.print(f"[red]threshold failed[/red] {failure}")
    if failures:
        raise typer.Exit(1)


def _comparison_table(comparison: Comparison) -> Table:
    table = Table(title=f"A = {comparison.run_a}\nB = {comparison.run_b}")
    for column in ("metric", "A", "B", "B - A", "max regression", ""):
        table.add_column(column, justify="left" if column in ("metric", "") else "right")
    for d in comparison.deltas:
        delta = "n/a" if d.delta is None else f"{d.delta:+.3f}"
        limit = "-" if d.limit is None else f"{d.limit:g}"
        flag = "[red]REGRESSION[/red]" if d.regression else ""
        table.add_row(d.name, _fmt(d.a, d.unit), _fmt(d.b, d.unit), delta, limit, flag)
    return table


@eval_app.command("compare")
def compare_cmd(
    run_a: str = typer.Argument(..., metavar="RUN_A", help="The reference run (id or directory)."),
    run_b: str = typer.Argument(..., metavar="RUN_B", help="The candidate run (id or directory)."),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression", help="Exit 1 on a regression."),
    show: int = typer.Option(15, "--show", min=0, help="How many worsened cases to list."),
    runs_dir: Path = typer.Option(DEFAULT_RUNS_DIR, "--runs-dir", help=RUNS_DIR_HELP),
) -> None:
    """Per-metric deltas of RUN_B against RUN_A and the cases that got worse."""
    comparison = compare_runs(load_run(run_a, runs_dir), load_run(run_b, runs_dir))
    console = _console()
    console.print(_comparison_table(comparison))
    for note in comparison.notes:
        console.print(f"note: {note}")
    worse = comparison.worse_cases()
    console.print(f"{len(worse)} case(s) got worse on at least one metric")
    for change in comparison.worse[:show]:
        console.print(
            f"  {change.case_id} {change.metric}: {change.a:.3f} -> {change.b:.3f}  {change.reason}", markup=False
        )
    regressions = comparison.regressions
    if regressions:
        names = ", ".join(d.name for d in regressions)
        console.print(f"[red]regression beyond the suite's limits:[/red] {names}")
        if fail_on_regression:
            raise typer.Exit(1)


@eval_app.command("report")
def report_cmd(
    run: str = typer.Argument(..., metavar="RUN", help="The run to report (id or directory)."),
    html: Path = typer.Option(..., "--html", help="Where to write the HTML page."),
    compare: str = typer.Option(None, "--compare", metavar="RUN_B", help="A second run to show beside RUN."),
    runs_dir: Path = typer.Option(DEFAULT_RUNS_DIR, "--runs-dir", help=RUNS_DIR_HELP),
) -> None:
    """Write one self-contained HTML page for RUN (and RUN_B beside it)."""
    a = load_run(run, runs_dir)
    b = load_run(compare, runs_dir) if compare else None
    path = write_report(html, a, b)
    typer.echo(f"report: {path}")


@eval_app.command("baseline")
def baseline_cmd(
    run: str = typer.Argument(..., metavar="RUN", help="A run of the suite (id or directory)."),
    out: Path = typer.Option(..., "--out", help="The baseline file, e.g. eval/baselines/script.json."),
    check: bool = typer.Option(False, "--check", help="Compare RUN with the baseline in --out instead of writing it."),
    runs_dir: Path = typer.Option(DEFAULT_RUNS_DIR, "--runs-dir", help=RUNS_DIR_HELP),
) -> None:
    """Record RUN's quality means as the baseline, or --check that RUN holds it (exit 1 if not)."""
    loaded = load_run(run, runs_dir)
    if not check:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(baseline_from(loaded), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"baseline: {out} ({len(baseline_from(loaded)['metrics'])} metrics from {loaded.run_id})")
        return
    try:
        baseline = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"{out}: cannot read the baseline: {exc}")
    problems = below_baseline(loaded, baseline)
    for problem in problems:
        typer.echo(f"below baseline: {problem}")
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{loaded.run_id} holds the baseline {out}")
