"""Backend ``direct``: the baseline the composer must beat (issue 15).

The top-ranked script's reply, the shop's values filled, nothing else: what MaxKB's direct
return and Dify's annotation reply do. The draft goes to review only when nothing was retrieved.
Registered on import (the eval imports it to run the baseline beside the composer).
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.config import Settings
from agent.corpus import fill
from agent.drafting.backends import register_backend
from agent.drafting.base import Grounding, Proposal
from agent.workspace.snapshot import Workspace

DIRECT_BACKEND = "direct"


@dataclass(frozen=True)
class DirectBackend:
    handoff: str
    standalone_only: tuple[str, ...] = ()
    name: str = DIRECT_BACKEND

    def draft(self, grounding: Grounding) -> Proposal:
        ranked = [q.candidates[0] for q in grounding.questions if q.candidates]
        # The 在吗 split off a message's start is not what it asks: the best of the rest, as the
        # whole message would rank it.
        asked = [c for c in ranked if c.script.category not in self.standalone_only]
        ranked = asked or ranked
        if not ranked:
            return Proposal(self.handoff, is_refusal=False, needs_review=True, notes=["nothing retrieved"])
        best = max(ranked, key=lambda c: c.score)
        values = dict(grounding.shop.vars)
        return Proposal(fill(best.script.reply, values), is_refusal=best.script.declines, cited_ids=[best.script.id])


def _direct(settings: Settings, workspace: Workspace) -> DirectBackend:
    return DirectBackend(workspace.style.handoff, tuple(workspace.style.standalone_only))


register_backend(DIRECT_BACKEND, _direct)
