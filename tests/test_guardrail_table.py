"""The labelled table (tests/data/guardrail_table.jsonl): per-rule precision and recall, fixes.

Each row is a draft written from the seeds' situations with the rule ids POLICY.md says it
breaks, whether it is a refusal, and whether a safe fix must exist. The scores print with
``pytest -s`` and without pytest: ``.venv/bin/python tests/test_guardrail_table.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest

from agent.config import REPO_ROOT
from agent.guardrails import check, load_rules
from agent.guardrails.rules import RuleSet
from agent.text import has_traditional, normalize
from agent.types import RuleId, Verdict

TABLE = Path(__file__).parent / "data" / "guardrail_table.jsonl"
RULE_IDS: tuple[str, ...] = get_args(RuleId)
THRESHOLD = 0.98
COURIERS = ("申通", "顺丰", "ems", "圆通", "中通", "韵达", "京东", "邮政")
OBFUSCATION = set("\u200b\u200d\u3000 ")  # zero-width, ideographic and plain spaces inside words
FIELDS = {"id", "draft", "query", "declared_refusal", "labels", "is_refusal", "fixable"}


@dataclass(frozen=True)
class Scored:
    row: dict[str, Any]
    verdict: Verdict

    @property
    def found(self) -> set[str]:
        return {f.rule for f in self.verdict.findings}


def kept_facts(text: str) -> tuple[list[str], list[int]]:
    """What a fix must never change: the numbers, in order, and how often each courier is named."""
    plain = normalize(text).text
    return re.findall(r"\d+", plain), [plain.count(name) for name in COURIERS]


def load_table(path: Path = TABLE) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def score_rows(rows: Iterable[dict[str, Any]], rules: RuleSet) -> list[Scored]:
    return [
        Scored(
            row, check(row["draft"], rules=rules, query=row.get("query"), declared_refusal=row.get("declared_refusal"))
        )
        for row in rows
    ]


def precision_recall(scored: list[Scored]) -> dict[str, tuple[float, float, int, int, int]]:
    """Per rule: precision, recall, true positives, false positives, false negatives."""
    table = {}
    for rule in RULE_IDS:
        tp = sum(1 for s in scored if rule in s.found and rule in s.row["labels"])
        fp = sum(1 for s in scored if rule in s.found and rule not in s.row["labels"])
        fn = sum(1 for s in scored if rule not in s.found and rule in s.row["labels"])
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        table[rule] = (precision, recall, tp, fp, fn)
    return table


def summary(scored: list[Scored]) -> str:
    lines = [f"{len(scored)} drafts, {sum(1 for s in scored if not s.row['labels'])} clean"]
    lines.append(f"{'rule':<26}{'precision':>10}{'recall':>8}{'tp':>5}{'fp':>4}{'fn':>4}")
    for rule, (precision, recall, tp, fp, fn) in precision_recall(scored).items():
        lines.append(f"{rule:<26}{precision:>10.3f}{recall:>8.3f}{tp:>5}{fp:>4}{fn:>4}")
    refusal_ok = sum(1 for s in scored if s.verdict.is_refusal == s.row["is_refusal"])
    lines.append(f"is_refusal agrees on {refusal_ok}/{len(scored)} drafts")
    return "\n".join(lines)


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return load_rules(REPO_ROOT / "corpus" / "tone_rules.yaml")


@pytest.fixture(scope="session")
def scored(rules: RuleSet) -> list[Scored]:
    return score_rows(load_table(), rules)


def test_the_table_covers_what_the_policy_asks_for(scored: list[Scored]) -> None:
    rows = [s.row for s in scored]
    assert len(rows) >= 250
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(set(r) <= FIELDS and set(r["labels"]) <= set(RULE_IDS) for r in rows)
    clean = [r for r in rows if not r["labels"]]
    assert len(clean) >= 100
    for rule in RULE_IDS:
        assert sum(1 for r in rows if rule in r["labels"]) >= 25, rule
    assert sum(1 for r in rows if len(r["labels"]) >= 2) >= 20
    assert sum(1 for r in rows if has_traditional(r["draft"])) >= 15
    assert sum(1 for r in rows if any(ch in OBFUSCATION or 0xFF10 <= ord(ch) <= 0xFF5A for ch in r["draft"])) >= 15
    traps = ("不客气", "不好意思", "没问题", "不用担心", "不错", "不容易褪色", "不但是", "不过", "只是", "宝贝")
    for trap in traps:
        assert any(trap in r["draft"] for r in clean), trap


def test_every_rule_reaches_the_precision_and_recall_goal(scored: list[Scored]) -> None:
    print("\n" + summary(scored))
    misses = [
        f"{s.row['id']}: expected {sorted(s.row['labels'])}, found {sorted(s.found)}: {s.row['draft']}"
        for s in scored
        if s.found != set(s.row["labels"])
    ]
    for rule, (precision, recall, *_) in precision_recall(scored).items():
        assert precision >= THRESHOLD and recall >= THRESHOLD, (rule, precision, recall, misses)


def test_refusals_are_recognised(scored: list[Scored]) -> None:
    wrong = [s.row["id"] for s in scored if s.verdict.is_refusal != s.row["is_refusal"]]
    assert len(wrong) <= (1 - THRESHOLD) * len(scored), wrong


def test_a_clean_draft_is_ok_and_offers_no_fix(scored: list[Scored]) -> None:
    for s in scored:
        assert s.verdict.ok is (not s.verdict.findings)
        if not s.found:
            assert s.verdict.fixed is None, s.row["id"]


def test_every_fixable_row_gets_a_fix_that_passes_every_rule_and_keeps_the_facts(
    scored: list[Scored], rules: RuleSet
) -> None:
    fixable = [s for s in scored if s.row["fixable"]]
    assert len(fixable) >= 80
    for s in fixable:
        fixed = s.verdict.fixed
        assert fixed is not None, s.row["id"]
        declared = True if s.verdict.is_refusal else s.row.get("declared_refusal")
        again = check(fixed, rules=rules, query=s.row.get("query"), declared_refusal=declared)
        assert again.ok, (s.row["id"], fixed, again.findings)
        assert kept_facts(fixed) == kept_facts(s.row["draft"]), (s.row["id"], fixed)


def test_what_cannot_be_fixed_safely_stays_a_finding_without_a_fix(scored: list[Scored]) -> None:
    unfixable = [s for s in scored if s.row["labels"] and not s.row["fixable"]]
    assert len(unfixable) >= 20
    for s in unfixable:
        assert s.verdict.findings and s.verdict.fixed is None, (s.row["id"], s.verdict.fixed)


if __name__ == "__main__":
    print(summary(score_rows(load_table(), load_rules(REPO_ROOT / "corpus" / "tone_rules.yaml"))))
