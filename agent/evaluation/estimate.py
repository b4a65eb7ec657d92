"""``kefu eval run --dry-run``: the LLM calls and tokens a run would cost, found without calling anything."""

from __future__ import annotations

from dataclasses import dataclass

from agent.config import LLM_BACKEND
from agent.drafting.pipeline import MAX_REVISIONS, prepare_message
from agent.evaluation.cache import CachedOpenAIBackend, CallStats, DiskCache
from agent.evaluation.dataset import GoldenCase
from agent.evaluation.runner import RunOptions, _drafter, _Variant, select_cases, suite_settings
from agent.evaluation.suite import Suite
from agent.types import Message


@dataclass(frozen=True)
class Estimate:
    """What a run would cost, found without calling any LLM."""

    label: str
    cases: int
    llm_calls: int
    cached_calls: int
    prompt_tokens: int
    max_completion_tokens: int
    max_revision_calls: int
    notes: tuple[str, ...] = ()


def _judge_tokens(variant: _Variant, cases: list[GoldenCase]) -> tuple[int, int]:
    from agent.drafting.prompts import load_prompt
    from agent.drafting.tokens import count_messages

    prompt = load_prompt(variant.suite.judge_prompt, variant.settings.prompts_dir)
    tokens = 0
    for case in cases:
        values = {
            "customer_message": case.message,
            "golden": case.golden,
            "draft": case.golden,  # the draft is not known yet: one as long as the golden reply
            "must_include": case.must_include,
            "expect_refusal": case.expect_refusal,
        }
        tokens += count_messages(prompt.render(values).contents(), variant.settings.llm_model)
    return tokens, (prompt.params.max_tokens or 0) * len(cases)


def estimate_variant(
    suite: Suite, cases: list[GoldenCase], backend: str, prompt: str | None, options: RunOptions
) -> Estimate:
    from agent.drafting.llm import fit_prompt
    from agent.drafting.prompts import load_prompt

    variant = _prepare_for_estimate(suite, backend, prompt, options)
    label = f"{suite.name} {backend}" + (f" {prompt}" if prompt else "")
    calls = cached = tokens = completion = 0
    llm = variant.llm
    if llm is not None:
        drafter = _drafter(variant, options)
        draft_prompt = load_prompt(variant.settings.prompt_version, variant.settings.prompts_dir)
        params = draft_prompt.params.call_kwargs()
        for case in cases:
            text, _ = prepare_message(case.message, variant.settings)
            message = Message(text=case.message, shop=case.shop, order=case.order, turns=case.turns)
            fitted = fit_prompt(draft_prompt, drafter.ground(message, text, drafter.snapshot()), variant.settings)
            calls += 1
            tokens += fitted.tokens
            completion += draft_prompt.params.max_tokens or 0
            cached += llm.cached(fitted.rendered, params) is not None
    if suite.judge:
        judge_tokens, judge_completion = _judge_tokens(variant, cases)
        calls += len(cases)
        tokens += judge_tokens
        completion += judge_completion
    revisions = MAX_REVISIONS * len(cases) if llm is not None else 0
    return Estimate(label, len(cases), calls, cached, tokens, completion, revisions, tuple(variant.notes))


def _prepare_for_estimate(suite: Suite, backend: str, prompt: str | None, options: RunOptions) -> _Variant:
    """Like a run's preparation, without requiring a configured LLM: nothing is called."""
    settings = suite_settings(suite, prompt if backend == LLM_BACKEND else None)
    cache = DiskCache(settings.data_dir / "eval-cache") if options.use_cache else None
    llm = CachedOpenAIBackend(settings, cache) if backend == LLM_BACKEND else None
    notes = [] if settings.llm_configured or llm is None else ["no LLM is configured yet: a real run would fail"]
    return _Variant(suite, backend, prompt, settings, CallStats(), llm, None, notes)


def estimate_suite(suite: Suite, options: RunOptions) -> list[Estimate]:
    cases = select_cases(suite, options.limit)
    return [estimate_variant(suite, cases, b, p, options) for b, p in suite.variants(options.backend, options.prompts)]
