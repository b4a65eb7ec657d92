"""What feedback says: acceptance and edit rates overall, per cited script and per guardrail rule.

A draft counts once, with the action of its latest feedback revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.store.drafts import Drafts

NO_SCRIPT = "(no script)"
NO_FINDING = "(no finding)"


@dataclass
class Tally:
    """Drafts served under one key (a script, a rule, or all) and what agents did with them."""

    key: str
    drafts: int = 0
    accepted: int = 0
    edited: int = 0
    rejected: int = 0

    @property
    def reviewed(self) -> int:
        return self.accepted + self.edited + self.rejected

    @property
    def edit_rate(self) -> float | None:
        return self.edited / self.reviewed if self.reviewed else None

    def add(self, action: str | None) -> None:
        self.drafts += 1
        if action in ("accepted", "edited", "rejected"):
            setattr(self, action, getattr(self, action) + 1)

    def as_dict(self) -> dict[str, Any]:
        seen = self.reviewed
        return {
            "key": self.key,
            "drafts": self.drafts,
            "reviewed": seen,
            "accepted": self.accepted,
            "edited": self.edited,
            "rejected": self.rejected,
            "acceptance_rate": round(self.accepted / seen, 4) if seen else None,
            "edit_rate": round(self.edit_rate, 4) if self.edit_rate is not None else None,
        }


def feedback_stats(store: Drafts) -> dict[str, Any]:
    """Acceptance and edit rates overall, per cited script and per guardrail rule of the draft."""
    total = Tally("all")
    scripts: dict[str, Tally] = {}
    rules: dict[str, Tally] = {}
    for row in store.outcomes():
        total.add(row["action"])
        for script_id in row["cited_ids"] or [NO_SCRIPT]:
            scripts.setdefault(script_id, Tally(script_id)).add(row["action"])
        for rule in row["rule_ids"] or [NO_FINDING]:
            rules.setdefault(rule, Tally(rule)).add(row["action"])
    return {
        "total": total.as_dict(),
        "scripts": [t.as_dict() for _, t in sorted(scripts.items())],
        "rules": [t.as_dict() for _, t in sorted(rules.items())],
    }
