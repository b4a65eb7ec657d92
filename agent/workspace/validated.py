"""A snapshot that parsed AND passed every cross-file check, or the list of what is wrong."""

from __future__ import annotations

from pathlib import Path

from agent.config import Settings
from agent.workspace.load import WorkspaceError, problems_of, read_workspace
from agent.workspace.snapshot import Workspace
from agent.workspace.validate import CHECKS


def _dirs(root: Path | Settings) -> tuple[Path, Path, Path]:
    if isinstance(root, Settings):
        return root.workspace, root.corpus_dir, root.prompts_dir
    return root, root / "corpus", root / "prompts"


def validate_workspace(root: Path | Settings) -> tuple[Workspace | None, list[str]]:
    """Every problem of the workspace, one line each; the snapshot when there is none."""
    top, corpus_dir, prompts_dir = _dirs(root)
    workspace, problems = read_workspace(top, corpus_dir, prompts_dir)
    if workspace is None:
        return None, problems
    for check in CHECKS:  # on a snapshot with problems too: one run lists them all
        problems.extend(problems_of(check, workspace))
    return (workspace if not problems else None), problems


def load_workspace(root: Path | Settings) -> Workspace:
    workspace, problems = validate_workspace(root)
    if workspace is None:
        raise WorkspaceError(problems[0] if problems else f"{root}: not a workspace", problems)
    return workspace
