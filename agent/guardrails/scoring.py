"""Scores of the guardrail on a labelled set: per-rule precision and recall, clean false positives.

A labelled row holds ``draft``, ``labels`` (the rule ids it breaks), ``is_refusal`` and optionally
``query`` and ``declared_refusal``. Used by the bench, the tests and the refusal trainer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.guardrails.engine import evaluate
from agent.guardrails.rules import REFUSAL_RULE, RuleSet
from agent.types import Verdict

RULE_IDS = ("over_intimacy", "negative_language", "contains_danshi", REFUSAL_RULE)


def load_labelled(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass(frozen=True)
class RuleScore:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass(frozen=True)
class Scores:
    rows: int
    clean: int
    clean_flagged: int
    refusal_agrees: int
    by_rule: dict[str, RuleScore]
    misses: list[str]

    @property
    def clean_fp_rate(self) -> float:
        return self.clean_flagged / self.clean if self.clean else 0.0

    def lines(self, title: str) -> list[str]:
        out = [f"{title}: {self.rows} drafts, {self.clean} clean"]
        out.append(f"  {'rule':<26}{'precision':>10}{'recall':>8}{'tp':>5}{'fp':>4}{'fn':>4}")
        for rule, s in self.by_rule.items():
            out.append(f"  {rule:<26}{s.precision:>10.3f}{s.recall:>8.3f}{s.tp:>5}{s.fp:>4}{s.fn:>4}")
        out.append(
            f"  clean drafts with a finding {self.clean_flagged}/{self.clean} ({self.clean_fp_rate:.1%}); "
            f"is_refusal agrees on {self.refusal_agrees}/{self.rows}"
        )
        return out


def verdicts(rows: Iterable[dict[str, Any]], rules: RuleSet) -> list[tuple[dict[str, Any], Verdict]]:
    return [
        (row, evaluate(row["draft"], row.get("query"), row.get("declared_refusal"), rules, with_fix=False))
        for row in rows
    ]


def score(rows: Iterable[dict[str, Any]], rules: RuleSet) -> Scores:
    judged = verdicts(rows, rules)
    counts = {rule: [0, 0, 0] for rule in RULE_IDS}
    misses = []
    clean = flagged = agrees = 0
    for row, verdict in judged:
        found = {f.rule for f in verdict.findings}
        labels = set(row["labels"])
        for rule in RULE_IDS:
            if rule in found and rule in labels:
                counts[rule][0] += 1
            elif rule in found:
                counts[rule][1] += 1
            elif rule in labels:
                counts[rule][2] += 1
        if not labels:
            clean += 1
            flagged += bool(found)
        agrees += verdict.is_refusal == bool(row["is_refusal"])
        if found != labels:
            misses.append(f"{row.get('id')}: expected {sorted(labels)}, found {sorted(found)}")
    by_rule = {rule: RuleScore(*c) for rule, c in counts.items()}
    return Scores(len(judged), clean, flagged, agrees, by_rule, misses)
