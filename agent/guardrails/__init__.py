"""The tone guardrail: does a draft break a tone rule, where, and is there a safe fix?

    check(draft, *, rules, query=None, declared_refusal=None) -> Verdict(ok, is_refusal, findings, fixed)

Rules are data (a workspace's ``corpus/tone_rules.yaml``, compiled once per version by
:func:`load_rules` / :func:`rules_for`); the caller passes the :class:`RuleSet` it holds. The
guardrail never reads settings. The check only reports: what to do with findings and fixes is
the caller's policy.
"""

from __future__ import annotations

from functools import lru_cache

from agent.guardrails.engine import evaluate
from agent.guardrails.rules import RULES_FILE, RuleSet, load_rules, rules_for
from agent.types import Verdict

__all__ = ["RuleSet", "check", "default_rules", "load_rules", "rules_for"]


@lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The repository's own tone rules, for tests and benchmarks; drafting, checking and evaluating
    always pass the rules of the workspace they work on."""
    from agent.config import REPO_ROOT  # lazily: the guardrail itself never needs settings

    return load_rules(REPO_ROOT / "corpus" / RULES_FILE)


def check(
    draft: str,
    *,
    rules: RuleSet,
    query: str | None = None,
    declared_refusal: bool | None = None,
) -> Verdict:
    """Check one draft against ``rules`` (with the customer's query and the drafter's refusal flag)."""
    return evaluate(draft, query, declared_refusal, rules)
