"""Refusal that reads the question: probes written from POLICY.md's list of what declines.

Each row of tests/data/guardrail_refusal_probes.jsonl is a customer's message, a reply and
whether the reply declines or fails what was asked (with the reason in ``note``). A refusal that
does not open with 非常抱歉 must also be a refusal_without_apology finding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.config import REPO_ROOT
from agent.guardrails import check, load_rules
from agent.guardrails.rules import RuleSet

PROBES = Path(__file__).parent / "data" / "guardrail_refusal_probes.jsonl"


def probes() -> list[dict[str, Any]]:
    return [json.loads(line) for line in PROBES.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(REPO_ROOT / "corpus" / "tone_rules.yaml")


@pytest.mark.parametrize("probe", probes(), ids=lambda p: p["id"])
def test_the_reply_is_read_against_the_question(probe: dict[str, Any], rules: RuleSet) -> None:
    verdict = check(probe["draft"], rules=rules, query=probe["query"])
    assert verdict.is_refusal is probe["is_refusal"], probe["note"]
    flagged = any(f.rule == "refusal_without_apology" for f in verdict.findings)
    opens = probe.get("opens_with_apology", probe["draft"].startswith("非常抱歉"))
    assert flagged is (probe["is_refusal"] and not opens)


def test_without_the_question_a_clean_answer_is_no_refusal(rules: RuleSet) -> None:
    """An answer with negative wording needs its question to be read as an answer; a clean one does not."""
    for probe in probes():
        if not probe["is_refusal"] and check(probe["draft"], rules=rules, query=probe["query"]).ok:
            assert not check(probe["draft"], rules=rules).is_refusal, probe["id"]


LEXICAL = Path(__file__).parent / "data" / "guardrail_lexical_probes.jsonl"


@pytest.mark.parametrize(
    "probe",
    [json.loads(line) for line in LEXICAL.read_text(encoding="utf-8").splitlines() if line.strip()],
    ids=lambda p: p["id"],
)
def test_lexical_probes_from_the_policy_lists(probe: dict[str, Any], rules: RuleSet) -> None:
    """Address, endings and first-person refusals POLICY.md names, beside their near misses."""
    found = sorted({f.rule for f in check(probe["draft"], rules=rules).findings})
    assert found == sorted(probe["labels"]), probe["note"]


def test_a_draft_declared_no_refusal_is_judged_with_its_question(rules: RuleSet) -> None:
    """Re-checking a draft with its final is_refusal (False) reaches the verdict checking it undeclared
    did: the question answered by the fee outweighs the cue 还请您理解, with or without the declaration."""
    draft, query = "亲，西藏属于偏远地区，需要另补15元运费，还请您理解。", "寄西藏要加钱吗"
    undeclared = check(draft, rules=rules, query=query)
    declared = check(draft, rules=rules, query=query, declared_refusal=False)
    assert not undeclared.is_refusal and undeclared.ok
    assert (declared.is_refusal, declared.ok) == (undeclared.is_refusal, undeclared.ok)
    assert check(draft, rules=rules, declared_refusal=False).is_refusal  # without the question, the cue decides
