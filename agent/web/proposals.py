"""From a supervisor's page to files: script change proposals and golden cases, each checked first.

A proposal (a changed reply for an existing script, or a new script for questions no script
answered) is applied to a throw-away copy of the workspace and the copy validated with
:func:`validate_workspace`; only a proposal with no problem is saved, as YAML under
``DATA_DIR/proposals/`` for a person to merge. The live corpus is never written here.

A golden case from an agent's edit takes its labels from the agent's final text: the text must
pass the guardrail, and ``expect_refusal`` is what the guardrail reads in it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agent.evaluation.dataset import GoldenCase
from agent.guardrails import check
from agent.types import Finding
from agent.workspace import Workspace, validate_workspace

PROPOSALS_DIR = "proposals"
GOLDEN_FILE = "golden_candidates.jsonl"


@dataclass(frozen=True)
class Outcome:
    """``saved`` is the file written; otherwise ``problems`` says why nothing was."""

    saved: Path | None
    problems: list[str]
    findings: list[Finding]


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")


def _script_file(ws: Workspace, script_id: str | None, category: str) -> tuple[Path | None, dict[str, Any] | None]:
    """The scripts file holding ``script_id`` (or, for a new script, the category's file) and its data."""
    for path in sorted((ws.corpus_dir / "scripts").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            continue
        ids = [s.get("id") for s in data.get("scripts") or [] if isinstance(s, dict)]
        if (script_id is not None and script_id in ids) or (script_id is None and data.get("category") == category):
            return path, data
    return None, None


def _copy(ws: Workspace, into: Path) -> None:
    shutil.copytree(ws.corpus_dir, into / "corpus", ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    shutil.copytree(ws.prompts_dir, into / "prompts", ignore=shutil.ignore_patterns("__pycache__"))


def validate_script(ws: Workspace, script: dict[str, Any], replaces: str | None) -> list[str]:
    """Problems that ``script`` replacing ``replaces`` (or added to its category) brings to the workspace.

    The workspace's files are copied and validated before and after the change: while the files
    on disk have problems of their own (someone mid-edit), no proposal can be judged, and none is.
    """
    path, data = _script_file(ws, replaces, str(script.get("category", "")))
    if path is None or data is None:
        where = f"script {replaces!r}" if replaces else f"category {script.get('category')!r}"
        return [f"{where}: not found in {ws.corpus_dir / 'scripts'}"]
    scripts = [s for s in data.get("scripts") or [] if not (isinstance(s, dict) and s.get("id") == replaces)]
    index = next((i for i, s in enumerate(data.get("scripts") or []) if s.get("id") == replaces), len(scripts))
    scripts.insert(index, {k: v for k, v in script.items() if k != "category"})
    data = {**data, "scripts": scripts}
    with tempfile.TemporaryDirectory(prefix="kefu-proposal-") as tmp:
        root = Path(tmp)
        _copy(ws, root)
        _, already = validate_workspace(root)  # files on disk may be mid-edit: judge only what the change adds
        if already:
            first = already[0].replace(tmp, "<workspace>")
            return [f"the workspace's files have problems of their own ({first}): fix them, then propose again"]
        target = root / "corpus" / "scripts" / path.name
        target.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        _, problems = validate_workspace(root)
    return [p.replace(tmp, "<proposal>") for p in problems]


def save_proposal(
    ws: Workspace,
    data_dir: Path,
    script: dict[str, Any],
    replaces: str | None,
    *,
    by: str,
    draft_id: str | None = None,
) -> Outcome:
    """Validate, then save the proposal; nothing is written when the workspace would break."""
    problems = validate_script(ws, script, replaces)
    verdict = check(str(script.get("reply", "")), rules=ws.tone)
    if not verdict.ok:
        problems = [*problems, *(f"reply: {f.rule}: {f.message} ({f.text})" for f in verdict.findings)]
    if problems:
        return Outcome(None, problems, list(verdict.findings))
    folder = data_dir / PROPOSALS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    name = str(script.get("id") or "new")
    path = folder / f"{_stamp()}-{name}.yaml"
    record = {
        "kind": "change" if replaces else "new",
        "replaces": replaces,
        "workspace_version": ws.version,
        "proposed_by": by,
        "from_draft": draft_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "script": script,
    }
    path.write_text(yaml.safe_dump(record, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return Outcome(path, [], [])


def list_proposals(data_dir: Path, limit: int = 50) -> list[dict[str, Any]]:
    folder = data_dir / PROPOSALS_DIR
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.yaml"), reverse=True)[:limit]:
        record = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        out.append({"file": path.name, **record})
    return out


# --- golden cases from edits -------------------------------------------------------------------


def golden_path(data_dir: Path) -> Path:
    return data_dir / GOLDEN_FILE


def golden_ids(data_dir: Path) -> set[str]:
    path = golden_path(data_dir)
    if not path.is_file():
        return set()
    return {json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def save_golden(ws: Workspace, data_dir: Path, fields: dict[str, Any]) -> Outcome:
    """Check the agent's final text and the case's fields; append the case to the candidates file."""
    text = str(fields.get("golden", ""))
    verdict = check(text, rules=ws.tone, query=str(fields.get("message", "")) or None)
    if not verdict.ok:
        lines = [f"{f.rule}: {f.message} ({f.text})" for f in verdict.findings]
        return Outcome(None, ["the agent's text breaks the tone rules: " + "; ".join(lines)], list(verdict.findings))
    unknown = [i for i in fields.get("expected_ids", []) if i not in ws.scripts_by_id]
    if unknown:
        return Outcome(None, [f"expected_ids: no script {unknown[0]!r} in the workspace"], [])
    try:
        case = GoldenCase.model_validate({**fields, "expect_refusal": verdict.is_refusal, "source": "feedback"})
    except ValidationError as exc:
        error = exc.errors()[0]
        return Outcome(None, [f"{'.'.join(map(str, error['loc']))}: {error['msg']}"], [])
    if case.id in golden_ids(data_dir):
        return Outcome(None, [f"id: a case {case.id!r} exists already"], [])
    path = golden_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(case.model_dump(mode="json", exclude_defaults=True), ensure_ascii=False) + "\n")
    return Outcome(path, [], [])
