"""The registry of drafting backends: a name -> a factory of :class:`~agent.drafting.base.Backend`.

    register_backend("mine", lambda settings, workspace: MyBackend(...))   # no core edit needed
    create_backend("script", settings, workspace)

``script`` (the offline composer) and ``openai`` (any OpenAI-compatible LLM) are registered here;
a module that calls :func:`register_backend` when imported adds its own (the eval's ``direct``
baseline does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from agent.config import BACKENDS_DEFAULT, LLM_BACKEND, Settings
from agent.drafting.base import Backend
from agent.errors import ConfigError
from agent.workspace.snapshot import Workspace

Factory = Callable[[Settings, Workspace], Backend]

_FACTORIES: dict[str, Factory] = {}
_LOCK = threading.Lock()


def register_backend(name: str, factory: Factory) -> None:
    with _LOCK:
        _FACTORIES[name] = factory


def _script(settings: Settings, workspace: Workspace) -> Backend:
    from agent.drafting.composer import ScriptComposer

    return ScriptComposer(workspace.style, workspace.tone)


def _llm(settings: Settings, workspace: Workspace) -> Backend:
    from agent.drafting.llm import OpenAIBackend

    return OpenAIBackend(settings, workspace.prompt)


register_backend(BACKENDS_DEFAULT, _script)
register_backend(LLM_BACKEND, _llm)


def backend_names() -> list[str]:
    return sorted(_FACTORIES)


def factory_for(name: str) -> Factory:
    found = _FACTORIES.get(name)
    if found is None:
        raise ConfigError(f"unknown backend {name!r}: use one of {', '.join(backend_names())}")
    return found


def create_backend(name: str, settings: Settings, workspace: Workspace) -> Backend:
    return factory_for(name)(settings, workspace)
