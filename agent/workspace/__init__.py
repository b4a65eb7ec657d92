"""The workspace: what supervisors edit, loaded once into an immutable, validated snapshot.

    load_workspace(root)           -> Workspace (raises WorkspaceError listing every problem)
    validate_workspace(root)       -> (Workspace | None, problems)
    WorkspaceHolder(root)          the last good snapshot; a watcher swaps in a new one that validates
    workspace_for(settings)        the snapshot of the configured workspace (cached per version)
    init_workspace(dir)            a starter workspace (the shipped default) for a shop to edit

Every function that drafts, checks or evaluates takes a Workspace explicitly.
"""

from __future__ import annotations

from agent.workspace.holder import WorkspaceHolder, holder_for, workspace_for
from agent.workspace.load import WorkspaceError
from agent.workspace.snapshot import Workspace
from agent.workspace.starter import init_workspace
from agent.workspace.validated import load_workspace, validate_workspace

__all__ = [
    "Workspace",
    "WorkspaceError",
    "WorkspaceHolder",
    "holder_for",
    "init_workspace",
    "load_workspace",
    "validate_workspace",
    "workspace_for",
]
