"""Request and response bodies. Requests are strict: unknown fields, text that is not valid Unicode,
a number where a boolean belongs (``declared_refusal: 0``) and unbounded lists are refused (422)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator, model_validator

from agent.drafting.backends import backend_names
from agent.types import Citation, Finding, Order, Turn

MAX_SHOP_CHARS = 64
MAX_TURNS = 20
MAX_TURN_CHARS = 2000
MAX_ID_CHARS = 128


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


class _Body(BaseModel):
    """A request body: unknown fields and text that is not valid Unicode are refused (422)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if _has_lone_surrogate(data):
            raise ValueError("the body contains a lone surrogate (\\ud800-\\udfff): send valid Unicode text")
        return data


class DraftIn(_Body):
    """The same fields as a line of ``kefu draft --jsonl``."""

    query: StrictStr = Field(description="The customer's message.")
    shop: StrictStr = Field(default="default", max_length=MAX_SHOP_CHARS, description="Shop profile name.")
    backend: StrictStr | None = Field(
        default=None, max_length=64, description="A registered drafting backend; default: the LLM when configured."
    )
    order: Order | None = None
    turns: list[Turn] = Field(default_factory=list, max_length=MAX_TURNS, description="Earlier turns, oldest first.")
    id: StrictStr | StrictInt | None = Field(default=None, description="Echoed back, for the caller's bookkeeping.")

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, backend: str | None) -> str | None:
        names = backend_names()
        if backend is not None and backend not in names:
            raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(names)} (or omit it)")
        return backend

    @field_validator("turns")
    @classmethod
    def _short_turns(cls, turns: list[Turn]) -> list[Turn]:
        if any(len(t.text) > MAX_TURN_CHARS for t in turns):
            raise ValueError(f"each earlier turn is at most {MAX_TURN_CHARS} characters")
        return turns

    @field_validator("order")
    @classmethod
    def _short_order(cls, order: Order | None) -> Order | None:
        if order is not None and any(
            len(v) > MAX_SHOP_CHARS for v in (order.courier, order.tracking_no, order.region) if v
        ):
            raise ValueError(f"order fields are at most {MAX_SHOP_CHARS} characters")
        return order

    def cost_chars(self) -> int:
        """The characters this request asks kefu to read (the message and the earlier turns)."""
        return len(self.query) + sum(len(t.text) for t in self.turns)


class DraftOut(BaseModel):
    draft_id: str
    id: str | int | None = None
    draft: str
    is_refusal: bool
    status: Literal["ok", "needs_review"]
    citations: list[Citation]
    violations: list[Finding]
    backend: str
    fallback_reason: str | None
    notes: list[str]
    timings_ms: dict[str, float]


class CheckIn(_Body):
    draft: StrictStr = Field(min_length=1, description="The reply to check (not empty).")
    query: StrictStr | None = Field(default=None, description="The customer's message, when known.")
    declared_refusal: StrictBool | None = Field(default=None, description="Whether the reply declines what was asked.")

    @field_validator("draft")
    @classmethod
    def _not_blank(cls, draft: str) -> str:
        if not draft.strip():
            raise ValueError("the draft is empty: send the reply text to check")
        return draft


class CheckOut(BaseModel):
    ok: bool
    is_refusal: bool
    violations: list[Finding]
    fixed: str | None


class FeedbackIn(_Body):
    draft_id: StrictStr = Field(max_length=64)
    action: Literal["accepted", "edited", "rejected"]
    final_text: StrictStr | None = Field(
        default=None, max_length=8000, description="What the agent sent; required when edited."
    )
    reason: StrictStr | None = Field(default=None, max_length=2000, description="Why; required when rejected.")
    revise: StrictBool = Field(default=False, description="Record a new revision of feedback already sent.")
    idempotency_key: StrictStr | None = Field(
        default=None, min_length=1, max_length=MAX_ID_CHARS, description="Retries with the same key store once."
    )

    @model_validator(mode="after")
    def _needs_text(self) -> FeedbackIn:
        if self.action == "edited" and not (self.final_text and self.final_text.strip()):
            raise ValueError("final_text is required when action is edited")
        if self.action == "rejected" and not (self.reason and self.reason.strip()):
            raise ValueError("reason is required when action is rejected")
        return self


class FeedbackOut(BaseModel):
    feedback_id: int
    draft_id: str
    action: Literal["accepted", "edited", "rejected"]
    revision: int
    replayed: bool
    recorded_at: str


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class ReadyOut(BaseModel):
    status: Literal["ready", "degraded"]
    checks: dict[str, str] | None = Field(default=None, description="Per dependency; only for keyed callers.")


ERROR_STATUSES = (400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 502, 503)
ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorOut} for status in ERROR_STATUSES}
