"""kefu: draft replies for customer-service agents of Chinese online shops.

The public surface::

    from agent import draft_reply, check
    draft = draft_reply("能便宜点吗？", shop="default")      # -> Draft
    verdict = check("亲亲，我们不能便宜")                    # -> Verdict (the workspace's tone rules)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.config import Settings, get_settings
from agent.errors import (
    BackendError,
    ConfigError,
    CorpusError,
    EmptyMessageError,
    InputError,
    KefuError,
    MessageTooLongError,
    PromptError,
    UnknownShopError,
)
from agent.guardrails import RuleSet
from agent.guardrails import check as _check
from agent.types import Citation, Draft, Finding, Message, Order, Script, Shop, Turn, Verdict

if TYPE_CHECKING:
    from agent.drafting.pipeline import draft_reply
    from agent.workspace import Workspace


def check(
    draft: str,
    *,
    query: str | None = None,
    declared_refusal: bool | None = None,
    rules: RuleSet | None = None,
    workspace: Workspace | None = None,
) -> Verdict:
    """Check a draft against the tone rules of ``rules``, else ``workspace``, else the configured workspace."""
    if rules is None:
        from agent.workspace import workspace_for

        rules = (workspace or workspace_for(get_settings())).tone
    return _check(draft, rules=rules, query=query, declared_refusal=declared_refusal)


def __getattr__(name: str) -> Any:
    """``draft_reply`` and ``Workspace`` are imported on first use: ``import agent`` stays light."""
    if name == "draft_reply":
        from agent.drafting.pipeline import draft_reply

        return draft_reply
    if name == "Workspace":
        from agent.workspace import Workspace

        return Workspace
    raise AttributeError(f"module 'agent' has no attribute {name!r}")


__all__ = [
    "BackendError",
    "Citation",
    "ConfigError",
    "CorpusError",
    "Draft",
    "EmptyMessageError",
    "Finding",
    "InputError",
    "KefuError",
    "Message",
    "MessageTooLongError",
    "Order",
    "PromptError",
    "Script",
    "Settings",
    "Shop",
    "Turn",
    "UnknownShopError",
    "Verdict",
    "Workspace",
    "check",
    "draft_reply",
    "get_settings",
]
