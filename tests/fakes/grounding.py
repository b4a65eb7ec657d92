"""A Grounding like the one retrieval hands a backend, from ``grounding.yaml`` and the real default shop."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from agent.config import REPO_ROOT
from agent.corpus import load_shop
from agent.drafting.base import Candidate, Grounding, Question
from agent.types import Order, Script, Turn

_TABLE = Path(__file__).with_name("grounding.yaml")


def _table() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(_TABLE.read_text(encoding="utf-8"))
    return data


def table_scripts() -> dict[str, Script]:
    return {raw["id"]: Script.model_validate(raw) for raw in _table()["scripts"]}


def make_grounding(
    message: str | None = None, *, order: Order | None = None, turns: tuple[Turn, ...] = ()
) -> Grounding:
    """The table's grounding; ``message`` replaces the customer's text (the candidates stay)."""
    table, scripts = _table(), table_scripts()
    questions = tuple(
        Question(q["text"], tuple(Candidate(scripts[c["id"]], c["score"]) for c in q["candidates"]))
        for q in table["questions"]
    )
    grounding = Grounding(table["message"], questions, load_shop(REPO_ROOT / "corpus"), order, turns)
    return grounding if message is None else replace(grounding, message=message)
