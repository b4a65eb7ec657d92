from agent.config import get_settings
from agent.errors import KefuError
from agent.types import Draft, Finding, Message, Script, Shop, Verdict

__all__ = ["Draft", "Finding", "KefuError", "Message", "Script", "Shop", "Verdict", "get_settings"]
