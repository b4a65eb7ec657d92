"""The checks that span files, run on a parsed snapshot before it may serve.

This module sits above everything it validates (corpus, shops, tone rules, emergency rules), so
none of them imports it back. Each problem is one line naming file, script and field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from agent.corpus import fill, variables
from agent.drafting.base import ORDER_VARIABLES
from agent.emergency import EmergencyRule
from agent.guardrails import check
from agent.text import normalize_query
from agent.types import Script
from agent.workspace.snapshot import Workspace


def _texts(script: Script) -> Iterator[tuple[str, str, frozenset[str], bool]]:
    """(field, text, the order variables it may name, whether it declines) of each text a script says."""
    yield "reply", script.reply, frozenset(), script.declines
    if script.phrase:
        yield "phrase", script.phrase, frozenset(), script.declines
    variant = script.with_order
    if variant is not None:
        declines = script.declines or variant.declines  # as the composer reads it
        yield "with_order.reply", variant.reply, ORDER_VARIABLES, declines
        if variant.brief:
            yield "with_order.brief", variant.brief, ORDER_VARIABLES, declines


def variable_problems(ws: Workspace) -> Iterator[str]:
    """Every ``{variable}`` a script, phrase or welcome uses is defined for every shop (a script's
    ``with_order`` words may also name the order's values: {order_courier}, {tracking_no} ...)."""
    corpus = ws.corpus
    for name, shop in sorted(ws.shops.items()):
        for script in corpus.scripts:
            for field_name, text, order_vars, _ in _texts(script):
                for var in sorted(variables(text) - shop.vars.keys() - order_vars):
                    yield (
                        f"{corpus.files[script.id]}: script {script.id}: field {field_name}: "
                        f"variable {{{var}}} is not defined for shop {name!r}"
                    )
        for var in sorted(variables(shop.welcome) - shop.vars.keys()):
            yield f"{ws.corpus_dir / 'shops' / (name + '.yaml')}: field welcome: variable {{{var}}} is not defined"


def tone_problems(ws: Workspace) -> Iterator[str]:
    """The corpus passes its own guardrail: each reply and phrase, default shop's values filled."""
    values = ws.shop("default").vars
    for script in ws.corpus.scripts:
        for field_name, text, _, declines in _texts(script):
            verdict = check(fill(text, values), declared_refusal=declines, rules=ws.tone)
            for f in verdict.findings:
                yield (
                    f"{ws.corpus.files[script.id]}: script {script.id}: field {field_name}: "
                    f"rule {f.rule} at {f.start}-{f.end} '{f.text}': {f.message}"
                )


def emergency_problems(ws: Workspace) -> Iterator[str]:
    path = ws.corpus_dir / "emergency.yaml"
    shop_vars = ws.shop("default").vars
    rules = ws.emergency
    for i, rule in enumerate(rules):
        where = f"{path}: rule {rule.id}"
        if rule.active.end <= rule.active.start:
            yield f"{where}: field active: the window ends before it starts"
        if rule.script is not None and rule.script not in ws.scripts_by_id:
            yield f"{where}: field script: unknown script {rule.script!r}"
        for var in sorted(variables(rule.reply or "") - shop_vars.keys()):
            yield f"{where}: field reply: variable {{{var}}} is not defined for shop 'default'"
        if rule.reply:
            verdict = check(fill(rule.reply, shop_vars), declared_refusal=rule.declines, rules=ws.tone)
            for f in verdict.findings:
                yield f"{where}: field reply: rule {f.rule} at {f.start}-{f.end} {f.text!r}: {f.message}"
        for pattern in rule.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                yield f"{where}: field patterns: invalid regular expression {pattern!r}: {exc}"
        for other in rules[:i]:
            if other.id == rule.id:
                yield f"{where}: field id: duplicate rule id"
            elif rule.active.overlaps(other.active) and _shared_trigger(rule, other):
                yield f"{where}: field keywords: overlaps rule {other.id} (same keyword, overlapping windows)"


def _shared_trigger(a: EmergencyRule, b: EmergencyRule) -> bool:
    keywords = {normalize_query(k) for k in a.keywords} & {normalize_query(k) for k in b.keywords}
    return bool(keywords) or bool(set(a.patterns) & set(b.patterns))


def prompt_problems(ws: Workspace) -> Iterator[str]:
    """The prompts the LLM backend needs are present (else an LLM draft would fail at request time)."""
    for name in ("draft.v1", "revise.v1"):
        if name not in ws.prompts:
            yield f"{ws.prompts_dir / (name + '.yaml')}: missing: the LLM backend needs it"


CHECKS = (variable_problems, tone_problems, emergency_problems, prompt_problems)
