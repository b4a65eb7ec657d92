"""The tone guardrail's figures, all in one run: ``.venv/bin/python bench/bench_guardrail.py``.

1. Quality: per-rule precision and recall on the team's table (tests/data/guardrail_table.jsonl)
   and on the unseen set's dev and test splits (eval/guardrail/, written by two writers who never
   saw the rules), side by side; the share of clean drafts with a finding; and the refusal rule
   with and without the customer's message (what reading the question adds).
2. ``check()`` in process on 10,000 drafts of about 200 characters (a table or dev row, with its
   query, padded with clean sentences; a fixed seed): each draft timed in several rounds, its
   fastest time kept (as timeit does); median and p95 against ONE compiled regex (the alternation
   of every lexicon term of tone_rules.yaml) over the same drafts, and beside check() with the
   trie-regex scan it falls back to without ahocorasick_rs.
3. ``kefu check --jsonl`` over 10,000 such lines against a bare Python process that parses the
   same JSON lines, runs that one regex and writes a JSON line per input; both as subprocesses in
   this run, alternately, the fastest of three runs each.
4. ``kefu check "…"``: the start-up time of one check (median of seven runs).
5. ``kefu audit`` over a generated log of 1,000,000 agent replies (each after a customer turn),
   written to /tmp, on every core of this machine.

Goals (issue 12): test per-rule P and R >= 0.98, clean false positives <= 1%, the team's table
at 1.00; check() median <= 40 us and p95 <= 80 us; --jsonl <= 5x the bare process; start <= 0.5 s;
the audit of 1,000,000 replies <= 60 s on 2 cores. ``--quick`` skips the audit (5); ``--dev`` prints
the quality figures of the team table and dev only, for tuning (test is never looked at then);
``--speed`` prints the speed figures (2-5) only.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.guardrails import check, load_rules  # noqa: E402
from agent.guardrails.rules import REFUSAL_RULE, KeywordGroup, RuleSet, ToneRulesSpec  # noqa: E402
from agent.guardrails.scoring import RULE_IDS, Scores, load_labelled, score  # noqa: E402
from agent.text import sentences  # noqa: E402

TABLE = REPO / "tests" / "data" / "guardrail_table.jsonl"
DEV = REPO / "eval" / "guardrail" / "dev.jsonl"
TEST = REPO / "eval" / "guardrail" / "test.jsonl"
RULES = REPO / "corpus" / "tone_rules.yaml"
DRAFTS = 10_000
TARGET_CHARS = 200
ROUNDS = 5
SEED = 20261122
AUDIT_REPLIES = 1_000_000
BARE = """\
import json, re, sys
rx = re.compile(sys.argv[1])
out = []
for line in sys.stdin:
    req = json.loads(line)
    out.append(json.dumps({"id": req.get("id"), "hits": rx.findall(req["draft"])}, ensure_ascii=False))
sys.stdout.write("\\n".join(out) + "\\n")
"""


def split(draft: str) -> list[str]:
    return [draft[start:end] for start, end in sentences(draft)]


def padded(rows: list[dict[str, Any]], count: int, seed: int) -> list[tuple[str, str | None]]:
    """``count`` (draft, query) pairs: a row (in the rows' share of problems) padded to ~200 characters
    with sentences of the clean, non-refusal rows."""
    rng = random.Random(seed)
    padding = [s for row in rows if not row["labels"] and not row["is_refusal"] for s in split(str(row["draft"]))]
    out = []
    for _ in range(count):
        row = rng.choice(rows)
        parts = [str(row["draft"])]
        length = len(parts[0])
        while length < TARGET_CHARS - 15:
            parts.append(rng.choice(padding))
            length += len(parts[-1])
        out.append(("".join(parts), row.get("query")))
    return out


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


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- 1. quality --------------------------------------------------------------------------------


def quality(rules: RuleSet, with_test: bool = True) -> None:
    """Per-rule figures; ``with_test`` False (``--dev``) while tuning, so test is never looked at then."""
    sets = {"team table": load_labelled(TABLE), "unseen dev": load_labelled(DEV)}
    if with_test:
        test = load_labelled(TEST)
        sets["unseen test"] = test
        # Writer M (eleventh round) joined after every figure of the rounds before: the freshest half.
        sets["test, writer M"] = [r for r in test if str(r["id"]).startswith("gm-")]
    scores: dict[str, Scores] = {name: score(rows, rules) for name, rows in sets.items()}
    print("== 1. quality: per-rule precision / recall (goal on test: >= 0.98 each; team table 1.00)")
    header = "".join(f"{name:>24}" for name in scores)
    print(f"{'rule':<26}{header}")
    for rule in RULE_IDS:
        cells = "".join(
            f"{s.by_rule[rule].precision:>11.3f} /{s.by_rule[rule].recall:>6.3f}    " for s in scores.values()
        )
        print(f"{rule:<26}{cells}")
    print(f"{'drafts (clean)':<26}" + "".join(f"{f'{s.rows} ({s.clean})':>24}" for s in scores.values()))
    print(
        f"{'clean with a finding':<26}"
        + "".join(f"{f'{s.clean_flagged} = {s.clean_fp_rate:.1%}':>24}" for s in scores.values())
        + "   (goal <= 1%)"
    )
    print(f"{'is_refusal agrees':<26}" + "".join(f"{f'{s.refusal_agrees}/{s.rows}':>24}" for s in scores.values()))
    print("refusal_without_apology without the customer's message (query=None), what reading the question adds:")
    for name in [n for n in ("unseen dev", "unseen test") if n in sets]:
        bare = score([{**row, "query": None} for row in sets[name]], rules).by_rule["refusal_without_apology"]
        full = scores[name].by_rule["refusal_without_apology"]
        print(
            f"  {name}: with query P {full.precision:.3f} R {full.recall:.3f}; "
            f"without P {bare.precision:.3f} R {bare.recall:.3f}"
        )
    learned(rules, sets)
    print()


def learned(rules: RuleSet, sets: dict[str, list[dict[str, Any]]]) -> None:
    """refusal_without_apology with the learned model (refusal.model) and without it, per set; and
    dev read by models each trained without one writer's dev rows (the model is trained on dev, so
    its in-sample dev figure flatters it)."""
    if rules.refusal_model is None:
        print("(no refusal model in tone_rules.yaml: the rules alone)")
        return
    cut = rules.refusal_model.cut
    from agent.guardrails.refusal_train import DEFAULT_FILES, read_rows, train

    # What the shipped model is trained on besides the two sets below (the drafting eval's dev cases).
    others = read_rows([p for p in DEFAULT_FILES if p not in (TABLE, DEV)])

    bare = dataclasses.replace(rules, refusal_model=None, model_stamp=None)
    print("refusal_without_apology with the learned model (refusal.model) / the rules alone:")
    for name, rows in sets.items():
        full = score(rows, rules)
        alone = score(rows, bare)
        a, b = full.by_rule[REFUSAL_RULE], alone.by_rule[REFUSAL_RULE]
        print(
            f"  {name:<16} P {a.precision:.3f} R {a.recall:.3f} clean FP {full.clean_flagged}"
            f"  /  P {b.precision:.3f} R {b.recall:.3f} clean FP {alone.clean_flagged}"
        )
    team, dev = sets["team table"], sets["unseen dev"]
    writers = sorted({str(r["id"])[:2] for r in dev})
    tp = fp = fn = flagged = 0
    for writer in writers:
        held = [r for r in dev if str(r["id"]).startswith(writer)]
        model = train(team + others + [r for r in dev if not str(r["id"]).startswith(writer)], max_run=rules.max_run)
        at_cut = dataclasses.replace(model, cut=cut)  # the shipped operating point
        part = score(held, dataclasses.replace(rules, refusal_model=at_cut))
        tp, fp, fn = (
            tp + part.by_rule[REFUSAL_RULE].tp,
            fp + part.by_rule[REFUSAL_RULE].fp,
            fn + part.by_rule[REFUSAL_RULE].fn,
        )
        flagged += part.clean_flagged
    print(
        f"  unseen dev, each writer read by a model trained without it ({len(writers)} writers): "
        f"P {tp / max(1, tp + fp):.3f} R {tp / max(1, tp + fn):.3f} clean FP {flagged}"
    )


# --- 2. check() in process -----------------------------------------------------------------------


def per_item_us(fn: Callable[[str, str | None], object], items: list[tuple[str, str | None]]) -> list[float]:
    best = [float("inf")] * len(items)
    clock = time.perf_counter_ns
    for _ in range(ROUNDS):
        for i, (draft, query) in enumerate(items):
            start = clock()
            fn(draft, query)
            elapsed = clock() - start
            if elapsed < best[i]:
                best[i] = elapsed
    return [ns / 1000 for ns in best]


def in_process(rules: RuleSet, items: list[tuple[str, str | None]], baseline: re.Pattern[str]) -> None:
    def guard(draft: str, query: str | None) -> object:
        return check(draft, rules=rules, query=query)

    regex_scan = dataclasses.replace(rules, finder=None)

    def guard_regex_scan(draft: str, query: str | None) -> object:
        return check(draft, rules=regex_scan, query=query)

    def regex(draft: str, query: str | None) -> object:
        return baseline.findall(draft)

    for draft, query in items[:500]:  # warm caches (OpenCC, character tables)
        guard(draft, query)
        guard_regex_scan(draft, query)
        regex(draft, query)
    verdicts = [check(d, rules=rules, query=q) for d, q in items]
    engine = per_item_us(guard, items)
    engine_regex_scan = per_item_us(guard_regex_scan, items)
    base = per_item_us(regex, items)
    chars = [len(d) for d, _ in items]
    flagged = sum(1 for v in verdicts if not v.ok)
    mean = statistics.mean(chars)
    print(f"== 2. check() in process (load average {os.getloadavg()[0]:.1f}): {len(items)} drafts, ", end="")
    print(f"{mean:.0f} characters on average, ", end="")
    print(f"{flagged / len(items):.0%} with findings, {sum(v.fixed is not None for v in verdicts)} with a safe fix")
    print(f"{'per draft (us), fastest of 5':<34}{'p50':>8}{'p95':>8}{'p99':>8}{'mean':>8}")
    timings = (
        ("check()", engine),
        ("check(), trie-regex scan", engine_regex_scan),
        ("one compiled regex (baseline)", base),
    )
    for label, values in timings:
        p50, p95, p99 = quantile(values, 0.50), quantile(values, 0.95), quantile(values, 0.99)
        print(f"{label:<34}{p50:>8.1f}{p95:>8.1f}{p99:>8.1f}{statistics.mean(values):>8.1f}")
    print(
        f"check() median {quantile(engine, 0.5):.1f} us (goal <= 40), p95 {quantile(engine, 0.95):.1f} us "
        f"(goal <= 80); {statistics.median(engine) / statistics.median(base):.1f}x the regex at the median"
    )
    print()


# --- 3. and 4. the command line ------------------------------------------------------------------


def kefu_command() -> list[str]:
    script = Path(sys.executable).parent / "kefu"
    return [str(script)] if script.exists() else [sys.executable, "-m", "agent.cli"]


def timed(cmd: list[str], stdin: Path | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system of the child) and the exit code of one run."""
    before = os.times()
    start = time.perf_counter()
    with open(stdin or os.devnull, "rb") as handle:
        done = subprocess.run(cmd, stdin=handle, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return wall, cpu, done.returncode


def command_line(items: list[tuple[str, str | None]], baseline: re.Pattern[str], tmp: Path) -> None:
    lines = tmp / "drafts.jsonl"
    with lines.open("w", encoding="utf-8") as out:
        for i, (draft, query) in enumerate(items):
            out.write(json.dumps({"id": i, "draft": draft, "query": query}, ensure_ascii=False) + "\n")
    bare = tmp / "bare.py"
    bare.write_text(BARE, encoding="utf-8")
    kefu = [*kefu_command(), "check", "--jsonl"]
    plain = [sys.executable, str(bare), baseline.pattern]
    runs: dict[str, list[tuple[float, float]]] = {"kefu": [], "bare": []}
    for _ in range(3):
        runs["kefu"].append(timed(kefu, lines)[:2])
        runs["bare"].append(timed(plain, lines)[:2])
    k_wall, b_wall = min(w for w, _ in runs["kefu"]), min(w for w, _ in runs["bare"])
    k_cpu, b_cpu = min(c for _, c in runs["kefu"]), min(c for _, c in runs["bare"])
    load = os.getloadavg()[0]
    print(f"== 3. kefu check --jsonl over {len(items)} lines (fastest of 3, alternating, same run; load {load:.1f})")
    print(f"kefu check --jsonl: {k_wall:.2f} s wall, {k_cpu:.2f} s CPU; {k_wall / len(items) * 1e6:.0f} us a line")
    print(f"bare python (json + one regex + json): {b_wall:.2f} s wall, {b_cpu:.2f} s CPU")
    print(f"ratio {k_wall / b_wall:.1f}x wall, {k_cpu / b_cpu:.1f}x CPU (goal <= 5x)")
    print()
    runs_start = [timed([*kefu_command(), "check", "亲，您好，请问有什么可以帮您？"])[:2] for _ in range(7)]
    walls = sorted(w for w, _ in runs_start)
    cpus = sorted(c for _, c in runs_start)
    print(f'== 4. kefu check "…" start to exit: median {walls[3]:.2f} s wall of 7 (min {walls[0]:.2f}), ', end="")
    print(f"{cpus[3]:.2f} s CPU; load average {os.getloadavg()[0]:.1f} (goal <= 0.5 s)")
    print()


# --- 5. the audit ----------------------------------------------------------------------------------


def audit_log(path: Path, replies: int, seed: int) -> None:
    rows = load_labelled(TABLE) + load_labelled(DEV)
    rng = random.Random(seed)
    agents = [f"客服{i:02d}" for i in range(40)]
    with path.open("w", encoding="utf-8") as out:
        for i in range(replies):
            row = rng.choice(rows)
            conversation = f"c{i // 3}"
            agent = agents[(i // 3) % len(agents)]
            when = f"2026-11-{1 + i % 28:02d} 10:{i % 60:02d}:00"
            query = row.get("query") or "在吗"
            turns = (("customer", query), ("agent", row["draft"]))
            for role, text in turns:
                record = {"conversation_id": conversation, "agent": agent, "time": when, "role": role, "text": text}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")


def audit(tmp: Path) -> None:
    path = tmp / "audit.jsonl"
    start = time.perf_counter()
    audit_log(path, AUDIT_REPLIES, SEED)
    made = time.perf_counter() - start
    size = path.stat().st_size / 1e6
    cmd = [*kefu_command(), "audit", str(path), "--json", "--no-progress"]
    load_before = os.getloadavg()[0]
    before, started = os.times(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    if done.returncode not in (0, 1):
        raise SystemExit(f"kefu audit failed: {done.stderr[-500:]}")
    summary = json.loads(done.stdout)
    replies, lines = summary["replies"], summary["lines"]
    cores = os.cpu_count() or 1
    print(f"== 5. kefu audit: {replies:,} agent replies ({lines:,} lines, {size:.0f} MB, ", end="")
    print(f"made in {made:.0f} s) on {cores} cores, load average {load_before:.1f} before the run")
    print(f"{wall:.1f} s wall, {replies / wall:,.0f} replies/s; {cpu:.1f} s CPU in all processes, ", end="")
    print(f"so {cpu / 2:.1f} s on 2 free cores (goal <= 60 s on 2 cores)")
    print(f"by_rule {summary['by_rule']}; {summary['with_findings']:,} replies with findings")
    print()


def main() -> None:
    rules = load_rules(RULES)
    terms = lexicon_terms()
    baseline = re.compile("|".join(re.escape(t) for t in terms))
    print(f"lexicon: {len(terms)} terms in {RULES.name}; {len(rules.lexicon())} scan literals after normalising\n")
    if "--speed" not in sys.argv:
        quality(rules, with_test="--dev" not in sys.argv)
    if "--dev" in sys.argv:
        return
    items = padded(load_labelled(TABLE) + load_labelled(DEV), DRAFTS, SEED)
    # What the quality section left alive (thousands of verdicts, the trained models) would otherwise
    # be walked by every collection during the timings: they run as in a process that just started.
    gc.collect()
    gc.freeze()
    in_process(rules, items, baseline)
    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as name:
        tmp = Path(name)
        command_line(items, baseline, tmp)
        if "--quick" not in sys.argv:
            audit(tmp)


if __name__ == "__main__":
    main()
