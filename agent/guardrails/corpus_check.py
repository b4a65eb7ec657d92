"""The corpus passes its own guardrail: ``kefu corpus validate`` runs these checks.

* ``tone_rules.yaml`` loads (every schema, regex and word problem, one line each);
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
from agent.guardrails.rules import RULES_FILE, load_rules


def tone_problems(corpus: Corpus, corpus_dir: Path) -> Iterator[str]:
    """Every problem of the tone rules file and every tone finding in the corpus, one line each."""
    try:
        rules = load_rules(corpus_dir / RULES_FILE)
    except CorpusError as exc:
        yield from exc.problems
        return
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
