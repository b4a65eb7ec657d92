"""The fit model: features, learning, the operating point, and the model the corpus ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import REPO_ROOT
from agent.drafting.base import Candidate
from agent.drafting.composer import load_style
from agent.drafting.fit import FEATURES, Example, FitModel, choices, features, learn, operating_point, probability
from agent.drafting.fit_train import FIT_MARK, write_model
from agent.types import Script, Source


def script(sid: str, questions: list[str]) -> Script:
    return Script(
        id=sid,
        category=sid.split(".")[0],
        title=questions[0],
        questions=questions,
        reply="您好。",
        source=Source(seed="s", section="x"),
    )


SF = script("shipping.sf", ["能发顺丰吗", "可以走顺丰不", "我要顺丰", "发顺风吗", "指定顺丰可以吗", "顺丰加多少"])
BAR = script("bargaining.cheap", ["能便宜点吗", "打个折吧", "少点呗", "优惠点", "能不能便宜", "太贵了"])


def test_features_follow_the_named_order_and_reward_agreement() -> None:
    cands = (Candidate(SF, 0.3, dense_rank=1, bm25_rank=1), Candidate(BAR, 0.2, dense_rank=2, bm25_rank=2))
    first, second = features("能发顺丰吗", cands, 0), features("能发顺丰吗", cands, 1)
    assert len(first) == len(FEATURES)
    named = dict(zip(FEATURES, first, strict=True))
    assert named["exact"] == 1.0 and named["dense_first"] == 1.0 and named["margin"] > 0
    assert dict(zip(FEATURES, second, strict=True))["coverage"] < named["coverage"]


def _examples() -> list[Example]:
    out = []
    for text, answer in [
        ("能发顺丰吗", SF.id),
        ("顺丰要加钱吗", SF.id),
        ("便宜点吧", BAR.id),
        ("能打折吗", BAR.id),
    ] * 5:
        right, wrong = (SF, BAR) if answer == SF.id else (BAR, SF)
        cands = (Candidate(right, 0.3, dense_rank=1, bm25_rank=1), Candidate(wrong, 0.2, dense_rank=2, bm25_rank=2))
        out.append(Example(text, cands, frozenset({answer})))
        # The corpus lacks the answer: nothing should fit.
        out.append(Example("你们老板是谁", (Candidate(wrong, 0.1, dense_rank=3, bm25_rank=None),), frozenset()))
    return out


def test_learning_separates_fitting_from_unfitting_candidates() -> None:
    examples = _examples()
    weights, bias = learn(examples, steps=2000)
    model = FitModel(weights=weights, bias=bias, threshold=0.5)
    good = probability(model, features("能发顺丰吗", examples[0].candidates, 0))
    bad = probability(model, features("你们老板是谁", examples[1].candidates, 0))
    assert good > 0.5 > bad


def test_the_operating_point_meets_the_target_precision() -> None:
    examples = _examples()
    weights, bias = learn(examples, steps=2000)
    model = operating_point(FitModel(weights=weights, bias=bias, threshold=0.5), examples, 0.97)
    answered, right, _ = choices(model, examples, model.threshold)
    assert answered and right / answered >= 0.97
    assert model.precision is not None and model.precision >= 0.97


def test_the_shipped_model_loads_with_every_feature_and_a_precision_operating_point() -> None:
    style = load_style(REPO_ROOT / "corpus")
    assert style.fit is not None
    assert set(style.fit.weights) == set(FEATURES)
    assert 0 <= style.use_threshold < style.fit.threshold < 1
    assert "golden" in style.fit.trained_on and "test" not in style.fit.trained_on


def test_training_rewrites_only_the_fit_block(tmp_path: Path) -> None:
    path = tmp_path / "composer.yaml"
    path.write_text("open_with: x\n\n" + FIT_MARK + "\nfit: {}\n", encoding="utf-8")
    model = FitModel(weights=dict.fromkeys(FEATURES, 1.0), bias=-1.0, threshold=0.5)
    write_model(path, model)
    write_model(path, model)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("open_with: x") and text.count(FIT_MARK) == 1 and "bias: -1.0" in text


@pytest.mark.parametrize("rank", [0, 1])
def test_probability_is_bounded(rank: int) -> None:
    model = FitModel(weights=dict.fromkeys(FEATURES, 100.0), bias=100.0, threshold=0.5)
    cands = (Candidate(SF, 0.3, dense_rank=1, bm25_rank=1), Candidate(BAR, 0.2, dense_rank=2, bm25_rank=2))
    assert 0.0 <= probability(model, features("能发顺丰吗", cands, rank)) <= 1.0
