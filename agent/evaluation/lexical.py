"""Lexical forms and scores: what a draft and a golden reply share on the surface.

Every lexical metric works on characters (Chinese has no spaces): ROUGE-L on the longest common
character subsequence, chrF on character n-grams, BLEU on sacrebleu's ``zh`` tokens with its
``exp`` smoothing. :class:`Score` is the value-and-reason every metric returns.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from agent.evaluation.numerals import to_arabic
from agent.text import Normalized, fold_width, normalize, to_simplified

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
