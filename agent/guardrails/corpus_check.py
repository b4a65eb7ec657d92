"""The corpus passes its own guardrail: ``kefu corpus validate`` runs these checks.

* ``tone_rules.yaml`` loads (every schema, regex and word problem, one line each), and no
  allow word is flagged by the rule it is meant to protect when checked on its own;
* every script's reply and phrase, with the default shop's values filled in, is checked
  with ``declared_refusal=script.declines``; each finding is one line naming file, script,
  field, rule, span and text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from agent.corpus import Corpus, fill, load_shop
from agent.errors import CorpusError, UnknownShopError
from agent.guardrails.engine import evaluate
from agent.guardrails.rules import CUE, RULES_FILE, RuleSet, load_rules, say


def allow_problems(rules: RuleSet) -> Iterator[str]:
    """Allow words that their own rule flags (an allow word must never be a finding)."""
    for scope, words in rules.allow.items():
        field = "refusal.allow" if scope == CUE else f"rules.{scope}.allow"
        for word in words:
            verdict = evaluate(word, None, None, rules, with_fix=False)
            flagged = {f.rule for f in verdict.findings} | ({CUE} if verdict.is_refusal else set())
            if scope in flagged:
                message = say("allow_flagged", word=word, rule=scope)
                yield say("field", path=rules.path, field=field, message=message)


def tone_problems(corpus: Corpus, corpus_dir: Path) -> Iterator[str]:
    """Every problem of the tone rules file and every tone finding in the corpus, one line each."""
    try:
        rules = load_rules(corpus_dir / RULES_FILE)
    except CorpusError as exc:
        yield from exc.problems
        return
    yield from allow_problems(rules)
    try:
        values = load_shop(corpus_dir).vars
    except (CorpusError, UnknownShopError) as exc:
        yield exc.message
        return
    for script in corpus.scripts:
        for field in ("reply", "phrase"):
            text = getattr(script, field)
            if not text:
                continue
            verdict = evaluate(fill(text, values), None, script.declines, rules, with_fix=False)
            for f in verdict.findings:
                yield (
                    f"{corpus.files[script.id]}: script {script.id}: field {field}: "
                    f"rule {f.rule} at {f.start}-{f.end} '{f.text}': {f.message}"
                )
