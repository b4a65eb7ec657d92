"""Personal data is masked before any backend (so any LLM prompt) sees the message, its turns or the order."""

from __future__ import annotations

from agent.config import get_settings
from agent.drafting.base import Grounding, Proposal
from agent.drafting.fake import ScriptedBackend
from agent.drafting.pipeline import Drafter
from agent.retrieval import Hit
from agent.types import Message, Order, Turn
from agent.workspace import load_workspace

SCRIPT = "shipping.default_courier"
PHONE, PASSWORD, CARD = "13900123456", "Qwe 789012", "6222 0212 3456 7899 018"


class StaticRetriever:
    def retrieve(self, query: str, k: int) -> list[Hit]:
        return [Hit(SCRIPT, "shipping", 0.9)][:k]


def test_the_backend_never_sees_the_raw_values() -> None:
    seen: list[Grounding] = []

    def answer(grounding: Grounding) -> Proposal:
        seen.append(grounding)
        return Proposal(f"亲，本店默认发申通快递。您的手机{PHONE}已登记。", False, [SCRIPT])

    settings = get_settings().model_copy(update={"backend": "openai"})
    drafter = Drafter(
        settings,
        workspace=load_workspace(settings),
        retriever_override=StaticRetriever(),
        llm_override=ScriptedBackend([answer]),
    )
    message = Message(
        text=f"我电话{PHONE}，密码 是 {PASSWORD}，发什么快递？",
        turns=[Turn(role="customer", text=f"卡号{CARD}")],
        order=Order(region=f"江苏省南京市玄武区中山路18号 {PHONE}"),
    )
    draft = drafter.draft(message)
    grounding = seen[0]
    everything = " ".join([grounding.message, *(t.text for t in grounding.turns), grounding.order.region or ""])
    for raw in (PHONE, PASSWORD, CARD, CARD.replace(" ", "")):
        assert raw not in everything
    assert "【手机号】" in grounding.message and "【银行卡】" in grounding.turns[0].text
    assert PHONE not in draft.text  # and an echo by the backend is masked in the draft too
    assert any("personal data masked" in n and "phone" in n for n in draft.notes)
    assert all(PHONE not in n for n in draft.notes)
