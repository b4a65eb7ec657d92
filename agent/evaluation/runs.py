"""A run on disk: ``eval/runs/RUN_ID/summary.json`` and ``cases.jsonl`` (one JSON line per case).

Runs are named ``<UTC time>-<suite>-<backend>[-<prompt>]``; commands take a run's id (looked up
in the runs directory) or its path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.errors import EvalError, NotFoundError

SUMMARY = "summary.json"
CASES = "cases.jsonl"
DEFAULT_RUNS_DIR = Path("eval/runs")


@dataclass(frozen=True)
class Run:
    """A finished run: its summary and its case records, in dataset order."""

    path: Path
    summary: dict[str, Any]
    cases: list[dict[str, Any]]

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id", self.path.name))

    def case_map(self) -> dict[str, dict[str, Any]]:
        return {str(c["id"]): c for c in self.cases}


def new_run_id(suite: str, backend: str, prompt: str | None, runs_dir: Path) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    base = "-".join(p for p in (stamp, suite, backend, prompt) if p)
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", base)
    run_id, n = base, 1
    while (runs_dir / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def write_run(directory: Path, summary: dict[str, Any], cases: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / CASES).open("w", encoding="utf-8") as fh:
        for case in cases:
            fh.write(json.dumps(case, ensure_ascii=False) + "\n")
    (directory / SUMMARY).write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return directory


def resolve_run(ref: str | Path, runs_dir: Path = DEFAULT_RUNS_DIR) -> Path:
    """The directory of a run given as a path or as an id in ``runs_dir``."""
    for candidate in (Path(ref), runs_dir / str(ref)):
        if (candidate / SUMMARY).is_file():
            return candidate
    raise NotFoundError(f"no run {str(ref)!r}: neither a run directory nor a run id in {runs_dir}")


def load_run(ref: str | Path, runs_dir: Path = DEFAULT_RUNS_DIR) -> Run:
    path = resolve_run(ref, runs_dir)
    try:
        summary = json.loads((path / SUMMARY).read_text(encoding="utf-8"))
        lines = (path / CASES).read_text(encoding="utf-8").splitlines()
        cases = [json.loads(line) for line in lines if line.strip()]
    except OSError as exc:
        raise EvalError(f"{path}: cannot read the run: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise EvalError(f"{path}: the run's files are not valid JSON: {exc.msg}") from None
    if not isinstance(summary, dict) or not all(isinstance(c, dict) and "id" in c for c in cases):
        raise EvalError(f"{path}: not a kefu eval run")
    return Run(path, summary, cases)
