"""The golden set: customer messages with the reply a good agent would send (``eval/golden.jsonl``).

One JSON object per line::

    {"id": "ship-001", "group": "basic", "category": "shipping",
     "message": "...", "golden": "...", "expect_refusal": false,
     "must_include": ["申通"], "must_not": ["但是"], "expected_ids": ["shipping.default_courier"],
     "shop": "default", "order": {...}, "turns": [...]}

A line that is not JSON, or a case with an unknown or missing field, is an :class:`EvalError`
naming the file, the line and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.datafile import field_errors
from agent.errors import EvalError
from agent.types import Order, Turn

GROUP_PATTERN = r"^[a-z][a-z_]*$"  # basic, traditional, multi, angry, rule_breaking, context, ...


class GoldenCase(BaseModel):
    """One customer message and what a good reply to it holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    message: str = Field(min_length=1)
    golden: str = Field(min_length=1)
    expect_refusal: bool
    must_include: list[str] = Field(default_factory=list)
    must_not: list[str] = Field(default_factory=list)
    category: str
    group: str = Field(default="basic", pattern=GROUP_PATTERN)
    expected_ids: list[str] = Field(default_factory=list)
    # One group per question of the message: the draft must cite one script of each group.
    # Absent: each expected id is one question.
    expected_groups: list[list[str]] = Field(default_factory=list)
    situations: list[str] = Field(default_factory=list)  # unseen set: the writer's label per question
    writer: str = ""  # unseen set: which independent writer wrote the case
    shop: str = "default"
    order: Order | None = None
    turns: list[Turn] = Field(default_factory=list)
    note: str = ""
    source: Literal["team", "feedback", "unseen"] = "team"  # "feedback": exported from agents' edits, for review

    def question_groups(self) -> list[list[str]]:
        """The scripts that answer each question: ``expected_groups``, else one per expected id."""
        return [list(g) for g in self.expected_groups] if self.expected_groups else [[i] for i in self.expected_ids]


def parse_cases(lines: Iterable[str], source: str) -> list[GoldenCase]:
    """Cases from JSON lines; blank lines are skipped; ids must be unique."""
    cases: list[GoldenCase] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{source}:{number}: not JSON: {exc.msg} at column {exc.colno}") from None
        try:
            case = GoldenCase.model_validate(raw)
        except ValidationError as exc:
            raise EvalError(f"{source}:{number}: {next(field_errors(exc))}") from None
        if case.id in seen:
            raise EvalError(f"{source}:{number}: field id: duplicate id {case.id!r}")
        seen.add(case.id)
        cases.append(case)
    return cases


def load_golden(path: Path) -> list[GoldenCase]:
    """Every case of a golden JSON-lines file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvalError(f"{path}: cannot read the dataset: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise EvalError(f"{path}: the dataset is not UTF-8 text") from None
    cases = parse_cases(text.splitlines(), str(path))
    if not cases:
        raise EvalError(f"{path}: the dataset holds no cases")
    return cases
