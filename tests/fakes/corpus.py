"""Private workspaces for tests: copies of the shipped corpus and prompts, edited per test."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import REPO_ROOT, get_settings


def private_corpus(target: Path, monkeypatch: pytest.MonkeyPatch, scripts: dict[str, str]) -> Path:
    """Copy the shipped corpus except its scripts to ``target``, write ``scripts`` (file name ->
    YAML text) and make ``target`` the configured corpus (KEFU_CORPUS_DIR)."""
    shutil.copytree(REPO_ROOT / "corpus", target, ignore=shutil.ignore_patterns("scripts"))
    (target / "scripts").mkdir()
    for name, text in scripts.items():
        (target / "scripts" / name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("KEFU_CORPUS_DIR", str(target))
    get_settings.cache_clear()
    return target


def workspace_copy(root: Path) -> Path:
    """A whole workspace (``corpus/`` and ``prompts/``) copied from the shipped one into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO_ROOT / "corpus", root / "corpus")
    shutil.copytree(REPO_ROOT / "prompts", root / "prompts")
    return root


def edit_yaml(path: Path, change: Callable[[Any], object]) -> None:
    """Rewrite the YAML file ``path`` after ``change(data)`` edited its data in place (its result is ignored)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def add_tone_word(corpus_dir: Path, rule: str, word: str) -> None:
    """Make ``word`` (two or more characters) a keyword of the tone rule ``rule`` in ``corpus_dir``."""

    def change(data: dict[str, Any]) -> None:
        data["rules"][rule]["keywords"].append({"note": "added by a test", "words": [word]})

    edit_yaml(corpus_dir / "tone_rules.yaml", change)
