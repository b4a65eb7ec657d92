"""Personal data (phone numbers, ID-card numbers, passwords) masked before it is echoed or stored.

The patterns are data (``corpus/redaction.yaml``) so a supervisor can add one without a release.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from agent.datafile import load


class Redactor(BaseModel):
    """Named regular expressions (compiled when the file loads) and the mask that replaces a match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mask: str = "***"
    patterns: dict[str, re.Pattern[str]]

    def redact(self, text: str) -> str:
        for pattern in self.patterns.values():
            text = pattern.sub(self.mask, text)
        return text

    def found(self, text: str) -> list[str]:
        """The kinds of personal data present in ``text`` (for notes, never the values)."""
        return [name for name, pattern in self.patterns.items() if pattern.search(text)]


def load_redactor(corpus_dir: Path) -> Redactor:
    return load(corpus_dir / "redaction.yaml", Redactor)
