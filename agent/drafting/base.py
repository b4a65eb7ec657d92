"""The seam between the pipeline and a drafting backend.

The pipeline retrieves, then hands a backend a :class:`Grounding`: the sanitised message,
each question with the scripts retrieved for it, the shop and the order. A backend returns a
:class:`Proposal`; the pipeline then runs the guardrail loop on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from agent.types import Finding, Order, Script, Shop, Turn


@dataclass(frozen=True)
class Candidate:
    """A retrieved script, how well it fits, and where it came from."""

    script: Script
    score: float
    emergency: bool = False
    dense_rank: int | None = None
    bm25_rank: int | None = None


@dataclass(frozen=True)
class Question:
    """One question of the customer's message and the scripts retrieved for it, best first.

    ``context`` marks a short piece that asks nothing and follows a question (我在成都 after
    用哪家快递): a draft need not answer it on its own.
    """

    text: str
    candidates: tuple[Candidate, ...]
    context: bool = False


def order_values(order: Order | None) -> dict[str, str]:
    """The order's values a script may name, those the order holds (``{gift_shortfall}`` is added
    by :meth:`Grounding.values`)."""
    if order is None:
        return {}
    amount = f"{order.amount:g}元" if order.amount is not None else None
    held = (order.courier, order.tracking_no, order.region, amount)
    return {name: value for name, value in zip(_ORDER_FIELDS, held, strict=True) if value}


_ORDER_FIELDS = ("order_courier", "tracking_no", "order_region", "order_amount")
# Every variable the order fills (a script's with_order words may name them).
ORDER_VARIABLES = frozenset((*_ORDER_FIELDS, "gift_shortfall"))


# The customer stating their order's total: 我买了260, 这单158元, 凑到250 (not 300多: no total).
_STATED = re.compile(
    r"(?:买了|这单|这一单|一共|总共|拍了|凑到|凑够|凑了|花了)\s*(\d{2,5}(?:\.\d{1,2})?)\s*(?:元|块)?(?![\d.多几])"
)


def stated_amount(message: str) -> float | None:
    """The order total the customer's message states, or None (none, or two different ones)."""
    found = {float(m.group(1)) for m in _STATED.finditer(message)}
    return found.pop() if len(found) == 1 else None


def _amount(text: str) -> float | None:
    """280元 as 280.0; None for anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*元?\s*", text)
    return float(match.group(1)) if match is not None else None


@dataclass(frozen=True)
class Grounding:
    """Everything a backend may draft from; nothing else is true."""

    message: str
    questions: tuple[Question, ...]
    shop: Shop
    order: Order | None = None
    turns: tuple[Turn, ...] = ()

    @property
    def order_known(self) -> bool:
        """Whether the order is known: given by the agent's tool, or its total stated by the customer
        (我买了260), which ``with_order`` words about the amount may then say."""
        return self.order is not None or stated_amount(self.message) is not None

    def values(self) -> dict[str, str]:
        """What fills a script's ``{variables}``: the shop's values, and the order's where known
        (with ``{gift_shortfall}``, what an order under the gift threshold lacks: 21元 of 280元); with no
        order amount, the total the customer states (我买了260, 这单158元)."""
        values = {**self.shop.vars, **order_values(self.order)}
        threshold = _amount(values.get("gift_threshold", ""))
        amount = self.order.amount if self.order is not None else None
        if amount is None and (amount := stated_amount(self.message)) is not None:
            values["order_amount"] = f"{amount:g}元"  # 我买了260: the customer's own word for the total
        if threshold is not None and amount is not None and amount < threshold:
            values["gift_shortfall"] = f"{round(threshold - amount, 2):g}元"
        return values

    def scripts(self) -> list[Candidate]:
        """Every distinct candidate, each at its best score, best first."""
        best: dict[str, Candidate] = {}
        for question in self.questions:
            for cand in question.candidates:
                if cand.script.id not in best or cand.score > best[cand.script.id].score:
                    best[cand.script.id] = cand
        return sorted(best.values(), key=lambda c: c.score, reverse=True)


@dataclass
class Proposal:
    """A backend's draft before the guardrail: text, whether it declines, what it used.

    ``is_refusal`` None: the backend cannot tell (a script that answers without declining may still
    tell a customer no: 需另补15元 to 包邮吗); the guardrail then decides from the customer's question.
    """

    text: str
    is_refusal: bool | None
    cited_ids: list[str] = field(default_factory=list)
    needs_review: bool = False
    notes: list[str] = field(default_factory=list)


class Backend(Protocol):
    @property
    def name(self) -> str: ...

    def draft(self, grounding: Grounding) -> Proposal: ...


@runtime_checkable
class Reviser(Protocol):
    """A backend that can rewrite a draft to clear the guardrail's findings."""

    def revise(self, grounding: Grounding, text: str, findings: list[Finding]) -> Proposal: ...
