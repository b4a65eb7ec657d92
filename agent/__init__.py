"""kefu: draft replies for customer-service agents of Chinese online shops.

The public surface::

    from agent import draft_reply, check
    draft = draft_reply("能便宜点吗？", shop="default")      # -> Draft
    verdict = check("亲亲，我们不能便宜")                    # -> Verdict
"""

from agent.config import Settings, get_settings
from agent.drafting.pipeline import draft_reply
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
from agent.guardrails import check
from agent.types import Citation, Draft, Finding, Message, Order, Script, Shop, Turn, Verdict

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
    "check",
    "draft_reply",
    "get_settings",
]
