"""A private corpus for a test: the real shared files (shops, tone rules, ...) and its own scripts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.config import REPO_ROOT, get_settings


def private_corpus(target: Path, monkeypatch: pytest.MonkeyPatch, scripts: dict[str, str]) -> Path:
    """Copy the shipped corpus except its scripts to ``target``, write ``scripts`` (file name ->
    YAML text) and make ``target`` the configured corpus."""
    shutil.copytree(REPO_ROOT / "corpus", target, ignore=shutil.ignore_patterns("scripts"))
    (target / "scripts").mkdir()
    for name, text in scripts.items():
        (target / "scripts" / name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("KEFU_CORPUS_DIR", str(target))
    get_settings.cache_clear()
    return target
