"""The tone guardrail: does a draft break a tone rule, where, and is there a safe fix?

    check(draft, query=None, declared_refusal=None) -> Verdict(ok, is_refusal, findings, fixed)

Rules are data (``corpus/tone_rules.yaml``, see :mod:`agent.guardrails.rules`), loaded once
and reloaded when the file changes; pass ``rules=`` to check against another rule set. The
check only reports: what to do with findings and fixes is the caller's policy.
"""

from __future__ import annotations

from agent.config import get_settings
from agent.guardrails.engine import evaluate
from agent.guardrails.rules import RuleSet, load_rules, rules_for
from agent.types import Verdict

__all__ = ["RuleSet", "check", "load_rules", "rules_for"]


def check(
    draft: str,
    query: str | None = None,
    declared_refusal: bool | None = None,
    rules: RuleSet | None = None,
) -> Verdict:
    """Check one draft (optionally with the customer's query and the drafter's refusal flag)."""
    ruleset = rules if rules is not None else rules_for(get_settings().corpus_dir)
    return evaluate(draft, query, declared_refusal, ruleset)
