"""The tools shops already use, from the workspace: the welcome auto-reply and quick phrases (快捷短语)."""

from __future__ import annotations

from pydantic import BaseModel

from agent.corpus import fill
from agent.errors import NotFoundError
from agent.guardrails import check
from agent.text import normalize_query
from agent.types import Finding
from agent.workspace.snapshot import Workspace


class Welcome(BaseModel):
    shop: str
    text: str
    ok: bool
    violations: list[Finding]


class Phrase(BaseModel):
    script_id: str
    category: str
    label: str
    title: str
    text: str
    declines: bool


def welcome(workspace: Workspace, shop: str = "default") -> Welcome:
    """The shop's first-message auto-reply (seed 002: 千牛 自动回复), filled and checked by its tone rules."""
    profile = workspace.shop(shop)
    text = fill(profile.welcome, profile.vars).strip()
    if not text:
        raise NotFoundError(f"shop {shop!r} has no welcome message: add `welcome:` to its shop file")
    verdict = check(text, rules=workspace.tone)
    return Welcome(shop=profile.name, text=text, ok=verdict.ok, violations=verdict.findings)


def phrases(
    workspace: Workspace, shop: str = "default", category: str | None = None, search: str | None = None
) -> list[Phrase]:
    """Ready-to-send phrases, shop values filled, in corpus order; filtered by category and text."""
    corpus = workspace.corpus
    if category is not None and category not in corpus.categories:
        known = ", ".join(sorted(corpus.categories))
        raise NotFoundError(f"unknown category {category!r}: known categories are {known}")
    values = workspace.shop(shop).vars
    needle = normalize_query(search).strip() if search else ""
    found = []
    for script in corpus.scripts:
        if category is not None and script.category != category:
            continue
        text = fill(script.phrase or script.reply, values)
        haystack = normalize_query(" ".join((text, script.title, *script.tags)))
        if needle and needle not in haystack:
            continue
        found.append(
            Phrase(
                script_id=script.id,
                category=script.category,
                label=corpus.categories[script.category].label,
                title=script.title,
                text=text,
                declines=script.declines,
            )
        )
    return found
