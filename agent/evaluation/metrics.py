"""Small, named metrics; each returns a :class:`Score`: a value and the reason for it.

Lexical metrics compare the *surface form* of two texts: Traditional folded to Simplified,
full-width to half-width, lower-cased, whitespace and invisible characters removed, punctuation
kept (as sacrebleu keeps it). Chinese has no spaces between words, so every lexical metric works
on characters: ROUGE-L on the longest common character subsequence, chrF on character n-grams,
BLEU on the tokens of sacrebleu's ``zh`` tokenizer (one token per CJK character, runs of
letters and digits kept whole), implemented here with sacrebleu's ``exp`` smoothing and
effective order for sentence BLEU.

Fact metrics (``must_include``, ``must_not``) match after the same folding plus Chinese numerals
read as digits, so ``十五元`` satisfies ``15元`` and ``運費`` satisfies ``运费``.

Values are in 0..1 (higher is better) except ``latency_ms`` (milliseconds, lower is better).
A value of ``None`` means the metric does not apply to the case (no facts listed, no script
expected); summaries leave those out.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.errors import EvalError
from agent.evaluation.lexical import (
    Score,
    bleu,
    chrf,
    fact_form,
    lcs_length,
    rouge_l,
    surface,
    zh_tokens,
)
from agent.evaluation.quality import correct, fragment, length_ratio, ok_precision, repeated_fact
from agent.text import Normalized

if TYPE_CHECKING:
    from agent.evaluation.dataset import GoldenCase
    from agent.guardrails.rules import RuleSet
    from agent.retrieval.embedder import Embedder

__all__ = ["Score", "bleu", "chrf", "fact_form", "lcs_length", "rouge_l", "surface", "zh_tokens"]


# --- meaning -------------------------------------------------------------------------------


def embedding_cosine(
    hypothesis: str, reference: str, embedder: Embedder, vectors: dict[str, list[float]] | None = None
) -> Score:
    """Cosine of the two texts' embeddings (clipped at 0); ``vectors`` caches embeddings by text."""
    memo = vectors if vectors is not None else {}
    missing = [t for t in dict.fromkeys((hypothesis, reference)) if t not in memo]
    if missing:
        memo.update(zip(missing, embedder.embed_queries(missing), strict=True))
    a, b = memo[hypothesis], memo[reference]
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    cosine = dot / norm if norm else 0.0
    return Score(max(0.0, min(1.0, cosine)), f"cosine {cosine:.3f} ({embedder.name})")


# --- facts ---------------------------------------------------------------------------------


# A time of day said on the hour: 15点, 15:00, 15时, 15点钟, 下午3点 name the same fact.
_CLOCK = re.compile(r"(上午|中午|下午|晚上)?(\d{1,2})(?:点钟|点|时|:00)(?![\d:])")


def _clock_forms(needle: str) -> list[str]:
    """``needle`` and, when it names an hour, the same phrase with the hour written each other way."""
    found = _CLOCK.search(needle)
    if found is None:
        return [needle]
    hour = int(found[2]) + (12 if found[1] in ("下午", "晚上") and int(found[2]) < 12 else 0)
    if hour > 24:
        return [needle]
    forms = [f"{hour}点", f"{hour}:00", f"{hour}时", f"{hour}点钟"]
    if 12 < hour < 24:
        forms += [f"下午{hour - 12}点", f"下午{hour - 12}:00", f"晚上{hour - 12}点"]
    elif found[1] is None and 1 <= hour <= 11:
        # A bare 3点 in a shop's hours is the afternoon as often as not (下午3点前付款当天发): writers M
        # and others write 3点 for the 15:00 cut-off, so the afternoon hour counts as the same fact.
        forms += [f"{hour + 12}点", f"{hour + 12}:00", f"{hour + 12}时", f"下午{hour}点"]
    head, tail = needle[: found.start()], needle[found.end() :]
    return [needle, *(head + form + tail for form in forms)]


def _find(form: Normalized, phrase: str) -> tuple[int, int] | None:
    needle = fact_form(phrase).text
    if not needle:
        return None
    for variant in _clock_forms(needle):
        at = form.text.find(variant)
        if at >= 0:
            return form.span(at, at + len(variant))
    return None


def missing_facts(text: str, facts: Sequence[str]) -> list[str]:
    form = fact_form(text)
    return [fact for fact in facts if _find(form, fact) is None]


def present_phrases(text: str, phrases: Sequence[str]) -> list[str]:
    form = fact_form(text)
    return [phrase for phrase in phrases if _find(form, phrase) is not None]


def must_include(text: str, facts: Sequence[str]) -> Score:
    """Share of the facts found in the draft; the reason names the missing ones."""
    if not facts:
        return Score(None, "no facts listed")
    form = fact_form(text)
    missing = [fact for fact in facts if _find(form, fact) is None]
    found = len(facts) - len(missing)
    if not missing:
        return Score(1.0, f"all {len(facts)} facts present")
    return Score(found / len(facts), f"missing {', '.join(missing)} ({found}/{len(facts)} present)")


def must_not(text: str, phrases: Sequence[str]) -> Score:
    """Share of the forbidden phrases absent from the draft; the reason names where each one was found."""
    if not phrases:
        return Score(None, "no phrases listed")
    form = fact_form(text)
    hits = [(phrase, span) for phrase in phrases if (span := _find(form, phrase)) is not None]
    if not hits:
        return Score(1.0, f"none of {len(phrases)} phrases present")
    where = ", ".join(f"{p} at {s}-{e} {text[s:e]!r}" for p, (s, e) in hits)
    spans = tuple((s, e, "must_not") for _, (s, e) in hits)
    return Score(1 - len(hits) / len(phrases), f"found {where}", spans)


# --- behaviour -----------------------------------------------------------------------------


def tone(text: str, rules: RuleSet, query: str | None = None, declared_refusal: bool | None = None) -> Score:
    """1 when the guardrail finds nothing in the draft; the reason lists each finding and its span.

    ``rules`` is the tone rules of the workspace the run drafts from (never a default behind its back).
    """
    from agent.guardrails import check

    verdict = check(text, rules=rules, query=query, declared_refusal=declared_refusal)
    if not verdict.findings:
        return Score(1.0, "no findings")
    reason = "; ".join(f"{f.rule} at {f.start}-{f.end} {f.text!r}" for f in verdict.findings)
    return Score(0.0, reason, tuple((f.start, f.end, f.rule) for f in verdict.findings))


def refusal_agreement(is_refusal: bool, expected: bool) -> Score:
    """1 when the draft declines exactly when the golden reply does."""
    said = "declines" if is_refusal else "does not decline"
    wanted = "a refusal" if expected else "no refusal"
    return Score(float(is_refusal == expected), f"expected {wanted}; the draft {said}")


def hit_at_k(expected: Sequence[str], retrieved: Sequence[Sequence[str]], k: int) -> Score:
    """Share of the expected scripts among the top ``k`` retrieved for any question of the message."""
    if not expected:
        return Score(None, "no scripts expected")
    top = {sid for hits in retrieved for sid in list(hits)[:k]}
    missing = [sid for sid in expected if sid not in top]
    if not missing:
        return Score(1.0, f"all {len(expected)} expected scripts in the top {k}")
    found = len(expected) - len(missing)
    return Score(found / len(expected), f"missing {', '.join(missing)} from the top {k}")


def citation_validity(cited: Sequence[str], retrieved: Sequence[Sequence[str]]) -> Score:
    """Share of the cited scripts that were actually retrieved for this message."""
    if not cited:
        return Score(None, "nothing cited")
    pool = {sid for hits in retrieved for sid in hits}
    invalid = [sid for sid in cited if sid not in pool]
    if not invalid:
        return Score(1.0, f"all {len(cited)} citations were retrieved")
    return Score(1 - len(invalid) / len(cited), f"cited but not retrieved: {', '.join(invalid)}")


def ok_grounded(status: str, cited: Sequence[str], expected: Sequence[str]) -> Score:
    """For a draft marked ``ok`` (an agent may send it as is): 1 when it cites an expected script.

    The precision of the composer's "this script fits" decision, which ``composer.yaml`` tunes:
    a wrong script in an ok draft is the costly mistake; a needs_review draft is not scored.
    """
    if status != "ok":
        return Score(None, f"status {status or 'none'}: not sent as is")
    if not expected:
        return Score(None, "no scripts expected")
    if set(cited) & set(expected):
        return Score(1.0, f"cites {', '.join(sid for sid in cited if sid in expected)}")
    return Score(0.0, f"ok but cites {', '.join(cited) or 'nothing'}; expected {', '.join(expected)}")


def latency(timings_ms: dict[str, float]) -> Score:
    """Milliseconds the draft took end to end; the reason splits it by stage."""
    total = timings_ms.get("total", 0.0)
    stages = ", ".join(f"{k} {v:.1f}" for k, v in timings_ms.items() if k != "total")
    return Score(total, f"{total:.1f} ms ({stages})" if stages else f"{total:.1f} ms")


# --- the registry the runner uses ----------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a backend produced for one case (``error`` set when it produced nothing)."""

    text: str = ""
    is_refusal: bool = False
    cited_ids: tuple[str, ...] = ()
    retrieved: tuple[tuple[str, ...], ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    status: str = ""


Judge = Callable[["GoldenCase", str], Score]


@dataclass
class Context:
    """What some metrics need besides the case: an embedder, the retrieval depth, a judge."""

    embedder: Embedder | None = None
    k: int = 5
    judge: Judge | None = None
    rules: RuleSet | None = None  # the workspace's tone rules
    lock: threading.Lock = field(default_factory=threading.Lock)
    vectors: dict[str, list[float]] = field(default_factory=dict)


MetricFn = Callable[["GoldenCase", Outcome, Context], Score]


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    fn: MetricFn
    higher_is_better: bool = True
    unit: str = ""
    needs_draft: bool = True
    aggregate: str = "mean"  # or "median": what a summary reports as the metric's value


def _rouge_l(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return rouge_l(out.text, case.golden)


def _chrf(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return chrf(out.text, case.golden)


def _bleu(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return bleu(out.text, case.golden)


def _embedding(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    if ctx.embedder is None:
        return Score(None, "no embedder configured")
    with ctx.lock:  # one model instance is shared by every worker thread
        return embedding_cosine(out.text, case.golden, ctx.embedder, ctx.vectors)


def _must_include(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return must_include(out.text, case.must_include)


def _must_not(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return must_not(out.text, case.must_not)


def _rules(ctx: Context) -> RuleSet:
    if ctx.rules is None:
        raise EvalError("the tone metrics need the run's tone rules (Context.rules): none were given")
    return ctx.rules


def _tone(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return tone(out.text, _rules(ctx), case.message, out.is_refusal)


def _refusal(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return refusal_agreement(out.is_refusal, case.expect_refusal)


def _hit_at_k(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return hit_at_k(case.expected_ids, out.retrieved, ctx.k)


def _citation_validity(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return citation_validity(out.cited_ids, out.retrieved)


def _ok_grounded(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return ok_grounded(out.status, out.cited_ids, case.expected_ids)


def _repeated_fact(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return repeated_fact(out.text)


def _fragment(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return fragment(out.text)


def _length_ratio(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return length_ratio(out.text, case.golden)


def _ok_precision(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    missing = missing_facts(out.text, case.must_include)
    return ok_precision(out.status, out.cited_ids, case.question_groups(), missing)


def _correct(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    missing = missing_facts(out.text, case.must_include)
    forbidden = present_phrases(out.text, case.must_not)
    clean = tone(out.text, _rules(ctx), case.message, out.is_refusal).value == 1.0
    agrees = out.is_refusal == case.expect_refusal
    return correct(out.cited_ids, case.question_groups(), missing, forbidden, clean, agrees)


def _needs_review(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return Score(float(out.status != "ok"), f"status {out.status or 'none'}")


def _latency(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return latency(out.timings_ms)


def _judge(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    if ctx.judge is None:
        return Score(None, "no LLM judge configured")
    return ctx.judge(case, out.text)


def _all(*metrics: Metric) -> dict[str, Metric]:
    return {m.name: m for m in metrics}


METRICS: dict[str, Metric] = _all(
    Metric("rouge_l", "character ROUGE-L F1 against the golden reply", _rouge_l),
    Metric("chrf", "character n-gram F-score (n 1-6, beta 2)", _chrf),
    Metric("bleu", "sentence BLEU, zh tokens, exp smoothing", _bleu),
    Metric("embedding", "embedding cosine to the golden reply", _embedding),
    Metric("must_include", "share of required facts present", _must_include),
    Metric("must_not", "share of forbidden phrases absent", _must_not),
    Metric("tone", "1 when the guardrail finds nothing", _tone),
    Metric("refusal", "draft declines exactly when expected", _refusal),
    Metric("hit_at_k", "expected scripts among the top k retrieved", _hit_at_k, needs_draft=False),
    Metric("citation_validity", "cited scripts were retrieved", _citation_validity),
    Metric("ok_grounded", "drafts marked ok cite an expected script", _ok_grounded),
    Metric("repeated_fact", "share of drafts that say a fact twice", _repeated_fact, higher_is_better=False),
    Metric("fragment", "share of drafts with a broken sentence", _fragment, higher_is_better=False),
    Metric("length_ratio", "draft length over the golden reply's (median)", _length_ratio, False, aggregate="median"),
    Metric("ok_precision", "ok drafts citing an expected script per question, every fact", _ok_precision),
    Metric("correct", "cites per question, every fact, nothing forbidden, tone, refusal", _correct),
    Metric("needs_review", "share of drafts marked needs_review", _needs_review, higher_is_better=False),
    Metric("latency_ms", "end-to-end drafting time", _latency, higher_is_better=False, unit="ms", needs_draft=False),
    Metric("judge", "LLM judge with the Chinese rubric of prompts/judge.v1.yaml", _judge),
)


def unknown_metrics(names: Sequence[str]) -> list[str]:
    return [n for n in names if n not in METRICS]


def score_case(case: GoldenCase, outcome: Outcome, names: Sequence[str], ctx: Context) -> dict[str, Score]:
    """Every named metric for one case; a case without a draft scores 0 where a draft is needed."""
    scores: dict[str, Score] = {}
    for name in names:
        metric = METRICS[name]
        if outcome.error is not None and metric.needs_draft:
            scores[name] = Score(0.0, f"no draft: {outcome.error}")
        else:
            scores[name] = metric.fn(case, outcome, ctx)
    return scores


def as_record(score: Score) -> dict[str, Any]:
    record: dict[str, Any] = {"value": score.value, "reason": score.reason}
    if score.spans:
        record["spans"] = [list(s) for s in score.spans]
    return record
