"""``kefu check``: run the tone guardrail on a draft, or on JSON lines from stdin.

Exit codes: 0 every draft is clean; 1 findings (or, with --jsonl, a line that could not be
checked); 2 a usage error (no text, empty text, text together with --jsonl).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import typer

from agent.cli import app, fail
from agent.config import get_settings
from agent.guardrails import RuleSet, check, rules_for
from agent.text import sanitize
from agent.types import Verdict

# Anything a person would see: a draft holding one is not empty (sanitize, a per-character
# pass, runs only on drafts that have none of these near their start).
_VISIBLE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
FLUSH_EVERY = 256  # lines written at once (a line each, as JSON Lines)


def workspace_rules() -> RuleSet:
    """The tone rules of the configured workspace (resolved here, at the edge, once)."""
    return rules_for(get_settings().corpus_dir)


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _public(verdict: Verdict) -> dict[str, Any]:
    """The JSON shape of a verdict, shared by --json and --jsonl."""
    return {
        "ok": verdict.ok,
        "is_refusal": verdict.is_refusal,
        "violations": [
            {"rule": f.rule, "start": f.start, "end": f.end, "text": f.text, "message": f.message}
            for f in verdict.findings
        ],
        "fixed": verdict.fixed,
    }


def _optional_str(req: dict[str, Any], name: str) -> str | None:
    value = req.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"field {name}: a string is required")
    return value


def _jsonl_record(line: str, rules: RuleSet) -> dict[str, Any]:
    try:
        req = json.loads(line)
    except json.JSONDecodeError as exc:
        return {"id": None, "error": f"not JSON: {exc.msg} at column {exc.colno}"}
    if not isinstance(req, dict):
        return {"id": None, "error": "each line must be a JSON object"}
    rid = req.get("id")
    draft = req.get("draft")
    if not isinstance(draft, str) or not _has_text(draft):
        return {"id": rid, "error": "field draft: a non-empty string is required"}
    declared = req.get("declared_refusal")
    if declared is not None and not isinstance(declared, bool):
        return {"id": rid, "error": "field declared_refusal: true, false or null is required"}
    try:
        query = _optional_str(req, "query")
    except ValueError as exc:
        return {"id": rid, "error": str(exc)}
    return {"id": rid, **_public(check(draft, rules=rules, query=query, declared_refusal=declared))}


def _has_text(draft: str) -> bool:
    return _VISIBLE.search(draft) is not None and (len(draft) > 16 or bool(sanitize(draft)))


def _run_jsonl(rules: RuleSet) -> int:
    worst = 0
    out: list[str] = []
    write = sys.stdout.write
    for line in sys.stdin:
        if not line.strip():
            continue
        record = _jsonl_record(line, rules)
        if "error" in record or not record["ok"]:
            worst = 1
        out.append(_dump(record))
        if len(out) >= FLUSH_EVERY:
            write("\n".join(out) + "\n")
            out.clear()
    if out:
        write("\n".join(out) + "\n")
    sys.stdout.flush()
    return worst


def _print_human(verdict: Verdict) -> None:
    if verdict.ok:
        typer.echo(f"ok: no findings (refusal={verdict.is_refusal})")
        return
    for f in verdict.findings:
        typer.echo(f"{f.rule}  {f.start}-{f.end}  {f.text!r}  {f.message}")
    typer.echo(f"fixed: {verdict.fixed}" if verdict.fixed is not None else "fixed: (no safe fix)")


@app.command("check")
def check_cmd(
    text: str | None = typer.Argument(None, help="The draft to check."),
    query: str | None = typer.Option(None, "--query", "-q", help="The customer's message the draft answers."),
    refusal: bool | None = typer.Option(
        None, "--refusal/--no-refusal", help="Declare the draft a refusal (or not), as a drafter would."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
    jsonl: bool = typer.Option(False, "--jsonl", help='Read {"id","draft","query"?} lines from stdin.'),
) -> None:
    """Check a draft against the tone rules. Exit 0 clean, 1 findings, 2 usage error."""
    if jsonl:
        if text is not None:
            fail("give either TEXT or --jsonl, not both", 2)
        raise typer.Exit(_run_jsonl(workspace_rules()))
    if text is None or not sanitize(text):
        fail("nothing to check: give the draft as TEXT (or use --jsonl)", 2)
        return
    verdict = check(text, rules=workspace_rules(), query=query, declared_refusal=refusal)
    if as_json:
        typer.echo(_dump(_public(verdict)))
    else:
        _print_human(verdict)
    raise typer.Exit(0 if verdict.ok else 1)
