"""``kefu audit FILE``: the tone audit (质检) of exported chat logs, every agent reply checked.

Exit codes: 0 no agent reply broke a rule; 1 findings (or the file could not be read);
2 a usage error. The summary goes to stdout (``--json``: one object), the progress bar to stderr.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import typer

from agent.cli import app, fail
from agent.guardrails.audit import Auditor, Fields, Summary, log_format, read_rows
from agent.guardrails.rules import RULES_FILE, RuleSet, rules_for


def _rules(corpus_dir: Path | None) -> RuleSet:
    if corpus_dir is None:
        from agent.config import get_settings

        corpus_dir = get_settings().corpus_dir
    return rules_for(corpus_dir)


class Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, raw: io.BufferedReader, total: int, enabled: bool) -> None:
        self.raw, self.total, self.enabled = raw, max(1, total), enabled
        self.last = 0.0

    def __call__(self, summary: Summary, share: float) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.1:
            return
        self.last = now
        self.draw(summary, share if share >= 0 else min(1.0, self.raw.tell() / self.total))

    def draw(self, summary: Summary, share: float) -> None:
        if not self.enabled:
            return
        bar = "#" * int(30 * share)
        sys.stderr.write(f"\r[{bar:<30}] {share:4.0%} {summary.replies:,} replies, {summary.with_findings:,} flagged")
        sys.stderr.flush()

    def done(self, summary: Summary) -> None:
        self.draw(summary, 1.0)
        if self.enabled:
            sys.stderr.write("\n")


def _print_human(summary: Summary, seconds: float) -> None:
    typer.echo(f"{summary.replies} agent replies checked in {seconds:.1f} s; {summary.with_findings} with findings")
    for rule, n in sorted(summary.by_rule.items()):
        typer.echo(f"  {rule:<26}{n:>9}")
    for name in sorted(summary.by_agent):
        a = summary.by_agent[name]
        typer.echo(f"  agent {name or '-'}: {a['replies']} replies, {a['with_findings']} with findings")
    if summary.skipped:
        first = f" (first: line {summary.problems[0][0]}: {summary.problems[0][1]})" if summary.problems else ""
        typer.echo(f"{summary.skipped} lines skipped{first}")


def audit(
    path: Path,
    *,
    rules: RuleSet,
    fields: Fields = Fields(),  # noqa: B008 (a frozen dataclass)
    fmt: str | None = None,
    workers: int | None = None,
    findings: Path | None = None,
    html: Path | None = None,
    progress: bool = True,
    chunk_bytes: int | None = None,
) -> tuple[Summary, float]:
    """Audit one log file; write the findings and the HTML report when asked. Returns the summary."""
    started = time.perf_counter()
    auditor = Auditor(rules, workers=workers, **({"chunk_bytes": chunk_bytes} if chunk_bytes else {}))
    raw = open(path, "rb")  # noqa: SIM115 (closed below; the bar reads its position)
    try:
        bar = Progress(raw, path.stat().st_size, progress)
        out = open(findings, "w", encoding="utf-8") if findings is not None else None  # noqa: SIM115
        try:
            if log_format(path, fmt) == "jsonl":
                summary = auditor.run_jsonl(path, fields, findings=out, progress=bar)
            else:
                text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                summary = auditor.run_rows(read_rows(text, "csv"), fields, findings=out, progress=bar)
        finally:
            if out is not None:
                out.close()
        bar.done(summary)
    finally:
        raw.close()
    seconds = time.perf_counter() - started
    if html is not None:
        from agent.guardrails.audit_report import write

        write(html, summary, auditor.worst_examples(), source=path.name, seconds=seconds)
    return summary, seconds


@app.command("audit")
def audit_cmd(
    file: Path = typer.Argument(..., help="Chat log: JSONL or CSV, one turn a line, in the order said."),
    as_json: bool = typer.Option(False, "--json", help="Print one summary object as JSON."),
    findings: Path | None = typer.Option(None, "--findings", help="Write each finding (with its span) as JSONL."),
    html: Path | None = typer.Option(None, "--html", help="Write an HTML report with the worst replies."),
    fmt: str | None = typer.Option(None, "--format", help="jsonl or csv (default: by the file's suffix)."),
    conversation_field: str = typer.Option("conversation_id", "--conversation-field"),
    agent_field: str = typer.Option("agent", "--agent-field"),
    time_field: str = typer.Option("time", "--time-field"),
    role_field: str = typer.Option("role", "--role-field"),
    text_field: str = typer.Option("text", "--text-field"),
    customer_role: str = typer.Option("customer", "--customer-role", help="The role value of customer turns."),
    agent_role: str = typer.Option("agent", "--agent-role", help="The role value of agent turns."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Worker processes (default: every core)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar on stderr."),
    corpus_dir: Path | None = typer.Option(None, "--corpus-dir", help=f"Where {RULES_FILE} is (default: workspace)."),
) -> None:
    """Check every agent reply of a chat log against the tone rules (质检)."""
    if fmt is not None and fmt not in ("jsonl", "csv"):
        fail(f"--format must be jsonl or csv, not {fmt!r}", 2)
    if not file.is_file():
        fail(f"no such file: {file}", 2)
    fields = Fields(conversation_field, agent_field, time_field, role_field, text_field, customer_role, agent_role)
    try:
        summary, seconds = audit(
            file,
            rules=_rules(corpus_dir),
            fields=fields,
            fmt=fmt,
            workers=workers,
            findings=findings,
            html=html,
            progress=not no_progress,
        )
    except UnicodeDecodeError:
        fail(f"{file}: not UTF-8 text")
        return
    except OSError as exc:
        fail(f"{exc.filename or file}: {exc.strerror}")
        return
    if as_json:
        typer.echo(json.dumps({**summary.as_json(), "seconds": round(seconds, 3)}, ensure_ascii=False))
    else:
        _print_human(summary, seconds)
    raise typer.Exit(1 if summary.with_findings else 0)
