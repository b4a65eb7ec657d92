"""``kefu init DIR``: a starter workspace, the shipped default copied for a shop to make its own."""

from __future__ import annotations

import shutil
from pathlib import Path

from agent.config import default_workspace
from agent.errors import InputError

PARTS = ("corpus", "prompts")


def init_workspace(target: Path, force: bool = False) -> list[Path]:
    """Copy the default corpus and prompts into ``target``; refuses to overwrite unless ``force``."""
    source = default_workspace()
    if target.exists() and not target.is_dir():
        raise InputError(f"{target} is not a directory: choose a directory for the workspace")
    existing = [target / p for p in PARTS if (target / p).exists()]
    if existing and not force:
        raise InputError(f"{existing[0]} already exists: choose an empty directory or pass --force")
    written = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        for part in PARTS:
            shutil.copytree(source / part, target / part, dirs_exist_ok=force)
            written.append(target / part)
    except OSError as exc:
        raise InputError(f"cannot write the workspace to {target}: {exc.strerror or exc}") from None
    return written
