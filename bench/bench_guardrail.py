"""How fast is the tone guardrail? ``make bench-guardrail`` prints the figures.

Builds 10,000 drafts of about 200 characters from the labelled table
(tests/data/guardrail_table.jsonl; a fixed seed, so every run checks the same drafts), twice:

* the table mix: each draft is one table row (clean, violating, Traditional, obfuscated, in the
  table's proportions: about half break a rule) padded with clean sentences to ~200 characters;
* the dense mix: every sentence drawn at random from all rows, so nearly every draft breaks
  several rules and most go through the fix and its re-check (a worst case);

and for each times

* ``check`` on each draft (normalisation, the scan, the refusal test and, for drafts with
  findings, the fix and its re-check), per draft: p50, p95, p99 and the mean;
* the baseline: ONE compiled regex alternation of every lexicon term of tone_rules.yaml
  (keywords, allow words, refusal cues and openers), ``findall`` over the same drafts.

Every draft is timed in each of several rounds and its fastest time kept (as timeit does),
since other work on the machine only ever adds time; percentiles and the ratio (time over all
drafts, check() / baseline) come from those times. Goals: p95 <= 300 us and ratio <= 5.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.guardrails import check, load_rules  # noqa: E402
from agent.guardrails.rules import KeywordGroup, RuleSet, ToneRulesSpec  # noqa: E402
from agent.text import sentences  # noqa: E402
from agent.types import Verdict  # noqa: E402

TABLE = REPO / "tests" / "data" / "guardrail_table.jsonl"
RULES = REPO / "corpus" / "tone_rules.yaml"
DRAFTS = 10_000
TARGET_CHARS = 200
ROUNDS = 5
SEED = 20261122


def load_rows() -> list[dict[str, object]]:
    return [json.loads(line) for line in TABLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def split(draft: str) -> list[str]:
    return [draft[start:end] for start, end in sentences(draft)]


def row_drafts(rows: list[dict[str, object]], count: int, target: int, seed: int) -> list[str]:
    """Each draft: one table row (any row, so the table's share of problems) padded to ``target``
    characters with sentences of the clean, non-refusal rows."""
    rng = random.Random(seed)
    padding = [s for row in rows if not row["labels"] and not row["is_refusal"] for s in split(str(row["draft"]))]
    drafts = []
    for _ in range(count):
        parts = [str(rng.choice(rows)["draft"])]
        length = len(parts[0])
        while length < target - 15:
            parts.append(rng.choice(padding))
            length += len(parts[-1])
        drafts.append("".join(parts))
    return drafts


def dense_drafts(rows: list[dict[str, object]], count: int, target: int, seed: int) -> list[str]:
    """Each draft: sentences drawn from every row at random, so nearly every draft breaks several rules."""
    rng = random.Random(seed)
    pool = [s for row in rows for s in split(str(row["draft"]))]
    drafts = []
    for _ in range(count):
        parts: list[str] = []
        length = 0
        while length < target - 15:
            parts.append(rng.choice(pool))
            length += len(parts[-1])
        drafts.append("".join(parts))
    return drafts


def lexicon_terms() -> list[str]:
    """Every literal term of tone_rules.yaml, as supervisors wrote them."""
    spec = ToneRulesSpec.model_validate(yaml.safe_load(RULES.read_text(encoding="utf-8")))
    groups: list[KeywordGroup] = [*spec.refusal.cues]
    terms = [*spec.refusal.allow, *spec.refusal.weak_openers, spec.refusal.apology]
    for rule in (spec.rules.over_intimacy, spec.rules.negative_language, spec.rules.contains_danshi):
        groups.extend(rule.keywords)
        terms.extend(rule.allow)
    terms.extend(word for group in groups for word in group.words)
    return sorted(set(terms), key=len, reverse=True)


def per_draft_us(fn: Callable[[str], object], drafts: list[str]) -> list[float]:
    """Microseconds per call, the fastest of ROUNDS rounds for each draft."""
    best = [float("inf")] * len(drafts)
    clock = time.perf_counter_ns
    for _ in range(ROUNDS):
        for i, draft in enumerate(drafts):
            start = clock()
            fn(draft)
            elapsed = clock() - start
            if elapsed < best[i]:
                best[i] = elapsed
    return [ns / 1000 for ns in best]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, drafts: list[str], guard: Callable[[str], Verdict], baseline: re.Pattern[str]) -> float:
    """Print the figures for one set of drafts; return check()'s p95 in microseconds."""
    verdicts = [guard(d) for d in drafts]
    flagged = sum(1 for v in verdicts if not v.ok)
    fixed = sum(1 for v in verdicts if v.fixed is not None)
    findings = sum(len(v.findings) for v in verdicts)
    engine_us = per_draft_us(guard, drafts)
    base_us = per_draft_us(baseline.findall, drafts)
    chars = [len(d) for d in drafts]
    print(f"== {name}")
    print(f"{len(drafts)} drafts, {statistics.mean(chars):.0f} characters on average (max {max(chars)}); ", end="")
    print(
        f"{flagged / len(drafts):.0%} with findings ({findings / len(drafts):.1f} per draft), {fixed} with a safe fix"
    )
    print(f"{'per draft (us)':<34}{'p50':>8}{'p95':>8}{'p99':>8}{'mean':>8}")
    for label, values in (("check()", engine_us), ("one regex alternation (baseline)", base_us)):
        p50, p95, p99 = quantile(values, 0.50), quantile(values, 0.95), quantile(values, 0.99)
        print(f"{label:<34}{p50:>8.1f}{p95:>8.1f}{p99:>8.1f}{statistics.mean(values):>8.1f}")
    ratio = sum(engine_us) / sum(base_us)
    p95 = quantile(engine_us, 0.95)
    print(f"time over all drafts: check() {sum(engine_us) / 1000:.0f} ms, baseline {sum(base_us) / 1000:.0f} ms")
    print(f"ratio check()/baseline {ratio:.2f}x (goal <= 5x); check() p95 {p95:.1f} us (goal <= 300 us)")
    print()
    return p95


def main() -> None:
    rules: RuleSet = load_rules(RULES)
    rows = load_rows()
    terms = lexicon_terms()
    baseline = re.compile("|".join(re.escape(t) for t in terms))

    def guard(draft: str) -> Verdict:
        return check(draft, rules=rules)

    print(f"lexicon: {len(terms)} terms in {RULES.name}; {len(rules.lexicon())} scan literals after normalising")
    print(f"each draft's time is its fastest of {ROUNDS} rounds\n")
    table_mix = row_drafts(rows, DRAFTS, TARGET_CHARS, SEED)
    dense_mix = dense_drafts(rows, DRAFTS, TARGET_CHARS, SEED)
    for draft in table_mix[:300] + dense_mix[:300]:  # warm caches (OpenCC, character tables)
        guard(draft)
        baseline.findall(draft)
    report("table mix: one table row per draft, padded with clean sentences", table_mix, guard, baseline)
    report("dense mix: every sentence drawn at random (a worst case)", dense_mix, guard, baseline)


if __name__ == "__main__":
    main()
