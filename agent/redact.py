"""Personal data (phone numbers, ID-card numbers, passwords) masked before it is echoed or stored.

The patterns are data (``corpus/redaction.yaml``) so a supervisor can add one without a release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from agent.errors import CorpusError


@dataclass(frozen=True)
class Redactor:
    mask: str
    patterns: tuple[tuple[str, re.Pattern[str]], ...]

    def redact(self, text: str) -> str:
        for _, pattern in self.patterns:
            text = pattern.sub(self.mask, text)
        return text

    def found(self, text: str) -> list[str]:
        """The kinds of personal data present in ``text`` (for notes, never the values)."""
        return [name for name, pattern in self.patterns if pattern.search(text)]


@lru_cache(maxsize=4)
def _load(path: Path, mtime: float) -> Redactor:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CorpusError(f"{path}: cannot load: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("patterns"), dict):
        raise CorpusError(f"{path}: field patterns: a mapping of name to regular expression is required")
    compiled = []
    for name, source in raw["patterns"].items():
        try:
            compiled.append((str(name), re.compile(str(source))))
        except re.error as exc:
            raise CorpusError(f"{path}: field patterns.{name}: invalid regular expression: {exc}") from None
    return Redactor(str(raw.get("mask", "***")), tuple(compiled))


def load_redactor(corpus_dir: Path) -> Redactor:
    path = corpus_dir / "redaction.yaml"
    try:
        mtime = path.stat().st_mtime
    except OSError:
        raise CorpusError(f"{path}: missing") from None
    return _load(path, mtime)
