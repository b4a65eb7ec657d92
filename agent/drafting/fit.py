"""Fit: does a retrieved script answer this question? A calibrated logistic model.

Features of a (question, candidate) pair: its place in the fused ranking, the dense and BM25
ranks, its fused score relative to the first candidate's and the margin behind it, and how much
wording the question shares with the script's variants (bigram coverage, longest shared run,
exact match). The weights are learnt by plain logistic regression (numpy) on labelled messages
and stored in ``corpus/composer.yaml`` under ``fit:`` with the operating point: the lowest
probability at which the answers chosen on the training messages are still at least
``target_precision`` right. Reproduce with::

    python -m agent.drafting.fit train          # writes the fit: block of corpus/composer.yaml
    python -m agent.drafting.fit train --dry-run

The composer calls :func:`fit_probability`; nothing here reads a file at drafting time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from agent.drafting.base import Candidate
from agent.text import normalize_query
from agent.types import Script

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)

FEATURES = (
    "first",
    "inv_rank",
    "dense_first",
    "bm25_first",
    "dense_inv",
    "bm25_inv",
    "relative_score",
    "margin",
    "coverage",
    "shared_run",
    "exact",
    "short_question",
)


class FitModel(BaseModel):
    """Logistic weights per feature, the bias, and the probability a fit must reach."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[str, float]
    bias: float
    threshold: float = Field(ge=0, le=1)
    trained_on: str = ""
    precision: float | None = None
    recall: float | None = None


def question_key(text: str) -> str:
    return _NON_WORD.sub("", normalize_query(text))


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or ({text} if text else set())


def _longest_shared_run(a: str, b: str) -> int:
    best = 0
    for i in range(len(a)):
        for j in range(i + best + 1, len(a) + 1):
            if a[i:j] in b:
                best = j - i
            else:
                break
    return best


def wording(question: str, script: Script) -> tuple[float, int, bool]:
    """Best bigram coverage of the question by a variant (or the title), longest shared run, exact."""
    q = question_key(question)
    if not q:
        return 0.0, 0, False
    grams = _bigrams(q)
    coverage, run, exact = 0.0, 0, False
    for variant in (*script.questions, script.title):
        v = question_key(variant)
        if not v:
            continue
        exact = exact or q == v
        coverage = max(coverage, len(grams & _bigrams(v)) / len(grams))
        run = max(run, _longest_shared_run(q, v))
    return coverage, run, exact


def features(question: str, candidates: Sequence[Candidate], rank: int) -> list[float]:
    """The feature vector of :data:`FEATURES` for ``candidates[rank]`` (0-based, best first)."""
    candidate = candidates[rank]
    top = candidates[0].score
    next_score = candidates[rank + 1].score if rank + 1 < len(candidates) else 0.0
    coverage, run, exact = wording(question, candidate.script)
    q = question_key(question)
    dense, bm25 = candidate.dense_rank, candidate.bm25_rank
    relative = candidate.score / top if top > 0 else 0.0
    margin = (candidate.score - next_score) / top if top > 0 and rank == 0 else 0.0
    return [
        float(rank == 0),
        1.0 / (1 + rank),
        float(dense == 1),
        float(bm25 == 1),
        1.0 / dense if dense else 0.0,
        1.0 / bm25 if bm25 else 0.0,
        relative,
        margin,
        coverage,
        min(run / max(len(q), 1), 1.0),
        float(exact),
        float(len(q) <= 4),
    ]


def probability(model: FitModel, vector: Sequence[float]) -> float:
    z = model.bias + sum(model.weights.get(name, 0.0) * x for name, x in zip(FEATURES, vector, strict=True))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def fit_probability(model: FitModel, question: str, candidates: Sequence[Candidate], rank: int) -> float:
    return probability(model, features(question, candidates, rank))


# --- training ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One question with its candidates, best first, and the ids that answer it (empty: none does)."""

    question: str
    candidates: tuple[Candidate, ...]
    answers: frozenset[str]


def _rows(examples: Sequence[Example]) -> tuple[list[list[float]], list[float]]:
    xs: list[list[float]] = []
    ys: list[float] = []
    for ex in examples:
        for rank, cand in enumerate(ex.candidates):
            xs.append(features(ex.question, ex.candidates, rank))
            ys.append(float(cand.script.id in ex.answers))
    return xs, ys


def learn(
    examples: Sequence[Example], l2: float = 0.001, steps: int = 20000, rate: float = 1.0
) -> tuple[dict[str, float], float]:
    """Logistic regression by full-batch gradient descent (numpy), L2 on the weights."""
    import numpy as np

    xs, ys = _rows(examples)
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    w = np.zeros(x.shape[1])
    b = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        grad = p - y
        w -= rate * (x.T @ grad / len(y) + l2 * w)
        b -= rate * float(grad.mean())
    return {name: round(float(v), 4) for name, v in zip(FEATURES, w, strict=True)}, round(b, 4)


def choices(model: FitModel, examples: Sequence[Example], threshold: float) -> tuple[int, int, int]:
    """(answered, right, answerable): per question the first candidate at or above ``threshold``."""
    answered = right = answerable = 0
    for ex in examples:
        answerable += bool(ex.answers & {c.script.id for c in ex.candidates})
        for rank, cand in enumerate(ex.candidates):
            if probability(model, features(ex.question, ex.candidates, rank)) >= threshold:
                answered += 1
                right += cand.script.id in ex.answers
                break
    return answered, right, answerable


def operating_point(model: FitModel, examples: Sequence[Example], target_precision: float) -> FitModel:
    """The lowest threshold whose chosen answers are at least ``target_precision`` right."""
    best = None
    for step in range(5, 100):
        t = step / 100
        answered, right, answerable = choices(model, examples, t)
        precision = right / answered if answered else 1.0
        if precision >= target_precision:
            best = model.model_copy(
                update={
                    "threshold": t,
                    "precision": round(precision, 4),
                    "recall": round(right / answerable, 4) if answerable else None,
                }
            )
            break
    return best or model.model_copy(update={"threshold": 0.99})


if __name__ == "__main__":  # python -m agent.drafting.fit train (the trainer imports this module)
    import runpy

    runpy.run_module("agent.drafting.fit_train", run_name="__main__")
