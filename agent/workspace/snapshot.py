"""The workspace snapshot: everything a supervisor edits, loaded once, validated, immutable.

A draft, a check and an eval case each read ONE snapshot from start to end, so a file saved
half-way through a request can never mix two versions of the rules. ``version`` names the
content of every file in the snapshot (sha256 over their paths and bytes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agent.context import ContextRules
from agent.corpus import Corpus
from agent.drafting.composer import ComposerStyle
from agent.drafting.prompts import Prompt
from agent.emergency import EmergencyRule
from agent.errors import PromptError, UnknownShopError
from agent.guardrails.rules import RuleSet
from agent.redact import Redactor
from agent.retrieval.split import SplitRules
from agent.types import Script, Shop

SHOP_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Workspace:
    """One validated version of a workspace directory (``corpus/`` and ``prompts/``)."""

    root: Path
    corpus_dir: Path
    prompts_dir: Path
    version: str
    corpus: Corpus
    shops: Mapping[str, Shop]
    tone: RuleSet
    style: ComposerStyle
    context: ContextRules
    redactor: Redactor
    split: SplitRules
    emergency: tuple[EmergencyRule, ...]
    prompts: Mapping[str, Prompt]
    retrieval_dir: Path
    scripts_by_id: Mapping[str, Script] = field(default_factory=dict)

    @property
    def shop_names(self) -> list[str]:
        return sorted(self.shops)

    def shop(self, name: str) -> Shop:
        """The merged shop profile; an unknown or malformed name is an UnknownShopError (no file I/O)."""
        profile = self.shops.get(name) if SHOP_NAME.fullmatch(name) else None
        if profile is None:
            shown = name if len(name) <= 64 else name[:64] + "…"
            raise UnknownShopError(f"unknown shop {shown!r}: known shops are {', '.join(self.shop_names) or 'none'}")
        return profile

    def prompt(self, name: str) -> Prompt:
        found = self.prompts.get(name)
        if found is None:
            known = ", ".join(sorted(self.prompts)) or "none"
            raise PromptError(f"{self.prompts_dir / (name + '.yaml')}: no such prompt (prompts here: {known})")
        return found

    def script(self, script_id: str) -> Script | None:
        return self.scripts_by_id.get(script_id)
