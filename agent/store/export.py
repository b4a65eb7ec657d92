"""Golden candidates from agents' edits: the labels come from what the agent sent, never from kefu.

An edited draft becomes a candidate eval case whose golden reply is the agent's final text. That
text must pass the guardrail (an edit that broke a tone rule is not a golden answer), and
``expect_refusal`` is what the guardrail reads in it. The scripts kefu cited are kefu's guess, so
``expected_ids`` and ``category`` are left for the supervisor who reviews the candidate, unless a
``labeler`` supplies them from the text. Without a labeler, the configured workspace's tone rules judge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.store.drafts import Drafts

if TYPE_CHECKING:
    from agent.guardrails.compiled import RuleSet


@dataclass(frozen=True)
class Labels:
    """What the agent's final text says about itself."""

    passes: bool
    is_refusal: bool
    category: str = ""
    expected_ids: list[str] = field(default_factory=list)


Labeler = Callable[[str, str], Labels]  # (customer message, final text) -> labels


def guardrail_labeler(rules: RuleSet) -> Labeler:
    """Labels from the guardrail alone, with ``rules`` (the workspace's tone rules)."""

    def labels(message: str, final_text: str) -> Labels:
        from agent.guardrails import check  # the guardrail is not the store's: imported when exporting

        verdict = check(final_text, rules=rules, query=message)
        return Labels(passes=verdict.ok, is_refusal=verdict.is_refusal)

    return labels


def configured_labeler() -> Labeler:
    """:func:`guardrail_labeler` with the configured workspace's tone rules."""
    from agent.config import get_settings
    from agent.workspace import workspace_for

    return guardrail_labeler(workspace_for(get_settings()).tone)


@dataclass
class Export:
    """The candidate cases, and the edits left out because the agent's text broke a tone rule."""

    cases: list[dict[str, Any]]
    failed_guardrail: list[str]


def export_golden(store: Drafts, labeler: Labeler | None = None) -> Export:
    """Every edited draft as a candidate golden case whose labels come from the agent's final text."""
    label = labeler or configured_labeler()
    cases, failed = [], []
    for row in store.outcomes():
        if row["action"] != "edited" or not row["final_text"]:
            continue
        labels = label(row["query"], row["final_text"])
        if not labels.passes:
            failed.append(row["draft_id"])
            continue
        cases.append(
            {
                "id": f"feedback-{row['draft_id'][:12]}",
                "message": row["query"],
                "golden": row["final_text"],
                "expect_refusal": labels.is_refusal,
                "must_include": [],
                "must_not": [],
                "category": labels.category,
                "expected_ids": labels.expected_ids,
                "shop": row["shop"],
                "note": f"from feedback on draft {row['draft_id']}; kefu drafted: {row['draft']}; "
                f"kefu cited: {', '.join(row['cited_ids']) or 'nothing'}",
                "source": "feedback",
            }
        )
    return Export(cases, failed)


def golden_candidates(store: Drafts, labeler: Labeler | None = None) -> list[dict[str, Any]]:
    """The cases of :func:`export_golden` (edits that broke a tone rule left out)."""
    return export_golden(store, labeler).cases
