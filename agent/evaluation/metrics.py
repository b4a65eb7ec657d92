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
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from agent.evaluation.numerals import to_arabic
from agent.text import Normalized, fold_width, normalize, to_simplified

if TYPE_CHECKING:
    from agent.evaluation.dataset import GoldenCase
    from agent.retrieval.embedder import Embedder

_NO_RUNS = 64  # keep repeated characters (1000 must stay 1000); only absurd runs are cut
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_ZH_TOKEN = re.compile(rf"[{_CJK}]|[a-z0-9]+(?:[.,:][0-9]+)*|[^\s{_CJK}a-z0-9]")


@dataclass(frozen=True)
class Score:
    """A metric's value for one case and why; ``spans`` point into the draft when there is a place to show."""

    value: float | None
    reason: str
    spans: tuple[tuple[int, int, str], ...] = ()


# --- text forms ----------------------------------------------------------------------------


def surface(text: str) -> str:
    """The form lexical metrics compare: simplified, width-folded, lower-cased, no whitespace."""
    return normalize(text, max_run=_NO_RUNS).text


def fact_form(text: str) -> Normalized:
    """The form facts are matched in: :func:`surface` plus Chinese numerals as digits, spans kept."""
    return to_arabic(normalize(text, max_run=_NO_RUNS))


def zh_tokens(text: str) -> list[str]:
    """sacrebleu's ``zh`` tokenisation: one token per CJK character, letters and digits kept in runs.

    Applied to the simplified, width-folded, lower-cased text; whitespace only separates tokens.
    """
    return _ZH_TOKEN.findall("".join(fold_width(ch) for ch in to_simplified(text)).lower())


def _ratio(value: float) -> str:
    return f"{value:.2f}"


# --- lexical -------------------------------------------------------------------------------


def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence (bit-parallel, Hyyrö 2004)."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, ch in enumerate(a):
        masks[ch] = masks.get(ch, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for ch in b:
        u = v & masks.get(ch, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l(hypothesis: str, reference: str) -> Score:
    """Character-level ROUGE-L F1 of a draft against the golden reply."""
    hyp, ref = surface(hypothesis), surface(reference)
    if not hyp or not ref:
        return Score(float(hyp == ref), "an empty text")
    lcs = lcs_length(ref, hyp)
    if lcs == 0:
        return Score(0.0, "no character in common")
    recall, precision = lcs / len(ref), lcs / len(hyp)
    f1 = 2 * precision * recall / (precision + recall)
    return Score(
        f1, f"LCS {lcs} chars: recall {_ratio(recall)} of {len(ref)}, precision {_ratio(precision)} of {len(hyp)}"
    )


def _ngrams(text: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(text[i : i + n]) for i in range(len(text) - n + 1))


def chrf(hypothesis: str, reference: str, order: int = 6, beta: float = 2.0) -> Score:
    """chrF: F-beta of character 1..``order``-gram precision and recall, each averaged over orders."""
    hyp, ref = surface(hypothesis), surface(reference)
    if not hyp or not ref:
        return Score(float(hyp == ref), "an empty text")
    precisions: list[float] = []
    recalls: list[float] = []
    for n in range(1, order + 1):
        h, r = _ngrams(hyp, n), _ngrams(ref, n)
        if not h or not r:
            continue
        match = sum((h & r).values())
        precisions.append(match / sum(h.values()))
        recalls.append(match / sum(r.values()))
    precision, recall = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    factor = beta**2
    denom = factor * precision + recall
    value = (1 + factor) * precision * recall / denom if denom > 0 else 0.0
    return Score(
        value, f"{len(precisions)} orders: precision {_ratio(precision)}, recall {_ratio(recall)} (beta {beta:g})"
    )


def bleu(
    hypothesis: str,
    reference: str,
    tokenize: Callable[[str], list[str]] = zh_tokens,
    order: int = 4,
    smooth: Literal["exp", "none"] = "exp",
) -> Score:
    """Sentence BLEU on ``tokenize``'s tokens, effective order, sacrebleu's ``exp`` smoothing (or none)."""
    hyp, ref = tokenize(hypothesis), tokenize(reference)
    if not hyp or not ref:
        return Score(float(hyp == ref), "an empty text")
    log_sum, eff_order, smooth_div = 0.0, 0, 1.0
    matched: list[str] = []
    for n in range(1, order + 1):
        h, r = _ngrams(hyp, n), _ngrams(ref, n)
        total = sum(h.values())
        if total == 0:
            break
        eff_order = n
        correct = sum((h & r).values())
        matched.append(f"{correct}/{total}")
        if correct == 0 and smooth == "none":
            return Score(0.0, f"no {n}-gram in common ({len(hyp)} vs {len(ref)} tokens)")
        if correct == 0:
            smooth_div *= 2
            log_sum += math.log(1.0 / (smooth_div * total))
        else:
            log_sum += math.log(correct / total)
    penalty = 1.0 if len(hyp) >= len(ref) else math.exp(1 - len(ref) / len(hyp))
    value = penalty * math.exp(log_sum / eff_order)
    return Score(value, f"{len(hyp)} vs {len(ref)} tokens; n-gram matches {' '.join(matched)}; BP {_ratio(penalty)}")


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


def _find(form: Normalized, phrase: str) -> tuple[int, int] | None:
    needle = fact_form(phrase).text
    if not needle:
        return None
    at = form.text.find(needle)
    return None if at < 0 else form.span(at, at + len(needle))


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


def tone(text: str, query: str | None = None, declared_refusal: bool | None = None) -> Score:
    """1 when the guardrail finds nothing in the draft; the reason lists each finding and its span."""
    from agent.guardrails import check

    verdict = check(text, query=query, declared_refusal=declared_refusal)
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


def _tone(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return tone(out.text, case.message, out.is_refusal)


def _refusal(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return refusal_agreement(out.is_refusal, case.expect_refusal)


def _hit_at_k(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return hit_at_k(case.expected_ids, out.retrieved, ctx.k)


def _citation_validity(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return citation_validity(out.cited_ids, out.retrieved)


def _ok_grounded(case: GoldenCase, out: Outcome, ctx: Context) -> Score:
    return ok_grounded(out.status, out.cited_ids, case.expected_ids)


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
