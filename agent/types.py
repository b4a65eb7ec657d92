"""The vocabulary every part of kefu speaks: messages, scripts, shops, drafts, findings."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# A {variable} of a script or shop text (the shop fills it; the order fills the order_* ones).
VARIABLE = re.compile(r"\{([a-z][a-z0-9_]*)\}")

RuleId = Literal["over_intimacy", "negative_language", "contains_danshi", "refusal_without_apology"]
# Findings beyond the tone rules: a claim no source holds, a citation outside what was retrieved.
FindingRule = Literal[RuleId, "unsupported_claim", "uncited_source"]
Status = Literal["ok", "needs_review"]
OrderStatus = Literal["unpaid", "paid", "shipped", "delivered", "refunding", "closed"]
Platform = Literal["淘宝", "天猫", "拼多多"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Strict):
    """Where a script's policy comes from: a seed file and the section in it."""

    seed: str
    section: str


class Conditions(_Strict):
    """Order states a script fits; an empty list means any."""

    status: list[OrderStatus] = Field(default_factory=list)
    platform: list[Platform] = Field(default_factory=list)


class WithOrder(_Strict):
    """What a script says instead when the agent's tool knows the order: the order's own values
    (``{order_courier}``, ``{tracking_no}``, ``{order_amount}``) in place of asking the customer
    for the order number. Used only when the order is given and holds every value it names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reply: str = Field(min_length=1)
    brief: str | None = None
    # The words decline what was asked (a gift asked for under the threshold: 再凑21元).
    declines: bool = False


class Script(_Strict):
    """One customer situation of the corpus and the reply that answers it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
    category: str
    title: str
    questions: list[str] = Field(min_length=6)
    reply: str = Field(min_length=1)
    declines: bool = False
    next_steps: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    source: Source
    conditions: Conditions = Field(default_factory=Conditions)
    phrase: str | None = None
    # What the script says when it answers beside others (composer.yaml's `briefs`): one sentence
    # with the answer and the facts that decide it; a greeting's (`lead_with`) 在的！ opens the answers.
    brief: str | None = None
    with_order: WithOrder | None = None

    def spoken(self, values: dict[str, str], order_known: bool) -> WithOrder | None:
        """``with_order`` when it is what to say: the order is known and ``values`` (the shop's and
        the order's) fill every variable it names; else None (the script's own words)."""
        variant = self.with_order
        if variant is not None and order_known:
            names = set(VARIABLE.findall(variant.reply + (variant.brief or "")))
            if names <= values.keys():
                return variant
        return None


class Shop(_Strict):
    """A shop profile: the facts that fill a script's {variables}."""

    name: str
    display_name: str
    platform: Platform = "淘宝"
    welcome: str = ""
    vars: dict[str, str] = Field(default_factory=dict)


class Order(_Strict):
    """The state of the order a message is about, when the agent's tool knows it."""

    status: OrderStatus | None = None
    courier: str | None = Field(default=None, max_length=32)
    tracking_no: str | None = Field(default=None, max_length=64)
    region: str | None = Field(default=None, max_length=64)
    amount: float | None = Field(default=None, ge=0, le=10_000_000)
    platform: Platform | None = None


class Turn(_Strict):
    role: Literal["customer", "agent"]
    text: str


class Message(_Strict):
    """A customer's message and what the agent's tool knows around it."""

    text: str
    shop: str = "default"
    order: Order | None = None
    turns: list[Turn] = Field(default_factory=list)


class Finding(_Strict):
    """One broken tone rule: where in the original text, and why."""

    rule: FindingRule
    start: int
    end: int
    text: str
    message: str


class Verdict(_Strict):
    """The guardrail's answer for one draft."""

    ok: bool
    is_refusal: bool
    findings: list[Finding] = Field(default_factory=list)
    fixed: str | None = None


class Citation(_Strict):
    id: str
    category: str
    score: float


class Draft(_Strict):
    """A reply the agent can send or edit, with how it was made."""

    text: str
    is_refusal: bool
    status: Status
    citations: list[Citation] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    backend: str
    fallback_reason: str | None = None
    notes: list[str] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)

    def public(self) -> dict[str, object]:
        """The JSON shape shared by ``kefu draft --json``, the JSON-lines output and the API."""
        return {
            "draft": self.text,
            "is_refusal": self.is_refusal,
            "status": self.status,
            "citations": [c.model_dump() for c in self.citations],
            "violations": [f.model_dump() for f in self.findings],
            "backend": self.backend,
            "fallback_reason": self.fallback_reason,
            "notes": self.notes,
            "timings_ms": self.timings_ms,
        }
