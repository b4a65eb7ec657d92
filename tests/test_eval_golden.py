"""The golden set is usable: enough cases, every group, worded apart from the corpus, and policy-true."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from agent.config import REPO_ROOT
from agent.corpus import load_corpus
from agent.errors import EvalError
from agent.evaluation.dataset import GoldenCase, load_golden, parse_cases
from agent.evaluation.metrics import must_include, must_not
from agent.guardrails import check, default_rules
from agent.text import normalize

GOLDEN = REPO_ROOT / "eval" / "golden.jsonl"


@pytest.fixture(scope="module")
def cases() -> list[GoldenCase]:
    return load_golden(GOLDEN)


def _key(text: str) -> str:
    return "".join(ch for ch in normalize(text).text if ch.isalnum())


def test_at_least_150_cases_across_every_group(cases: list[GoldenCase]) -> None:
    assert len(cases) >= 150
    groups = Counter(c.group for c in cases)
    assert {"basic", "traditional", "multi", "angry", "rule_breaking"} <= set(groups)
    assert min(groups[g] for g in ("traditional", "multi", "angry", "rule_breaking")) >= 15
    assert sum(c.expect_refusal for c in cases) >= 40


def test_no_golden_message_is_a_corpus_question(cases: list[GoldenCase]) -> None:
    corpus = load_corpus(REPO_ROOT / "corpus")
    questions = {_key(q): s.id for s in corpus.scripts for q in s.questions}
    clashes = [(c.id, questions[_key(c.message)]) for c in cases if _key(c.message) in questions]
    assert clashes == []


def test_expected_ids_name_scripts_of_the_corpus(cases: list[GoldenCase]) -> None:
    known = set(load_corpus(REPO_ROOT / "corpus").by_id())
    unknown = [(c.id, sid) for c in cases for sid in c.expected_ids if sid not in known]
    assert unknown == []
    assert all(c.expected_ids for c in cases)


def test_golden_replies_obey_the_tone_policy(cases: list[GoldenCase]) -> None:
    broken = []
    for case in cases:
        verdict = check(case.golden, rules=default_rules(), query=case.message, declared_refusal=case.expect_refusal)
        broken.extend((case.id, f.rule, f.text) for f in verdict.findings)
    assert broken == []


def test_golden_replies_hold_their_own_facts(cases: list[GoldenCase]) -> None:
    for case in cases:
        assert must_include(case.golden, case.must_include).value in (None, 1.0), case.id
        assert must_not(case.golden, case.must_not).value in (None, 1.0), case.id


def test_a_bad_line_names_the_file_line_and_field(tmp_path: Path) -> None:
    good = json.dumps(
        {"id": "a", "message": "m", "golden": "g", "expect_refusal": False, "category": "c"}, ensure_ascii=False
    )
    with pytest.raises(EvalError, match=r"x\.jsonl:2: field expect_refusal"):
        parse_cases([good, '{"id": "b", "message": "m", "golden": "g", "category": "c"}'], "x.jsonl")
    with pytest.raises(EvalError, match=r"x\.jsonl:2: field id: duplicate"):
        parse_cases([good, good], "x.jsonl")
    with pytest.raises(EvalError, match=r"x\.jsonl:1: not JSON"):
        parse_cases(["{nope"], "x.jsonl")
    with pytest.raises(EvalError, match="no cases"):
        empty = tmp_path / "empty.jsonl"
        empty.write_text("\n", encoding="utf-8")
        load_golden(empty)
