"""`kefu corpus validate` catches emergency rules a supervisor got wrong."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from agent.config import REPO_ROOT, Settings
from agent.emergency import EmergencyRule, active_match
from agent.workspace import Workspace, validate_workspace


def _rule(rule_id: str, start: str, end: str, **extra: object) -> dict[str, object]:
    return {
        "id": rule_id,
        "keywords": ["到哪了"],
        "active": {"start": start, "end": end},
        **({"reply": "亲，受天气影响快递有延误，会尽快为您派送。"} if "script" not in extra else {}),
        **extra,
    }


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(REPO_ROOT / "corpus", target)
    return target


def validate(corpus: Path) -> tuple[object, list[str]]:
    """The workspace of this corpus copy (the shipped prompts) validated as a whole."""
    return validate_workspace(Settings(corpus_dir=corpus))


def _problems(corpus: Path, rules: list[dict[str, object]]) -> list[str]:
    (corpus / "emergency.yaml").write_text(yaml.safe_dump({"rules": rules}, allow_unicode=True), encoding="utf-8")
    return [p for p in validate(corpus)[1] if "emergency.yaml" in p]


def test_the_shipped_emergency_file_is_valid(corpus: Path) -> None:
    assert [p for p in validate(corpus)[1] if "emergency" in p] == []


def test_a_window_that_ends_before_it_starts(corpus: Path) -> None:
    problems = _problems(corpus, [_rule("late", "2026-11-20T00:00:00+08:00", "2026-11-19T00:00:00+08:00")])
    assert any("rule late" in p and "field active" in p for p in problems)


def test_an_unknown_script(corpus: Path) -> None:
    rule = _rule("x", "2026-11-20T00:00:00+08:00", "2026-11-21T00:00:00+08:00", script="logistics.nope")
    assert any("field script" in p and "logistics.nope" in p for p in _problems(corpus, [rule]))


def test_overlapping_rules_with_a_shared_keyword(corpus: Path) -> None:
    a = _rule("a", "2026-11-20T00:00:00+08:00", "2026-11-22T00:00:00+08:00")
    b = _rule("b", "2026-11-21T00:00:00+08:00", "2026-11-23T00:00:00+08:00")
    c = _rule("c", "2026-12-01T00:00:00+08:00", "2026-12-02T00:00:00+08:00")
    problems = _problems(corpus, [a, b, c])
    assert any("rule b" in p and "overlaps rule a" in p for p in problems)
    assert not any("rule c" in p for p in problems)


def test_a_reply_that_breaks_a_tone_rule(corpus: Path) -> None:
    rule = _rule("rude", "2026-11-20T00:00:00+08:00", "2026-11-21T00:00:00+08:00", reply="快递慢我们没办法，但是会催。")
    problems = _problems(corpus, [rule])
    assert any("rule rude" in p and "contains_danshi" in p for p in problems)


def test_a_window_without_time_zone_is_rejected(corpus: Path) -> None:
    problems = _problems(corpus, [_rule("naive", "2026-11-20T00:00:00", "2026-11-21T00:00:00")])
    assert any("field" in p and "active" in p for p in problems)


# --- matching a message: active_match(rules, text, now) -----------------------------------

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _rules(*rules: dict[str, object]) -> tuple[EmergencyRule, ...]:
    return tuple(EmergencyRule.model_validate(r) for r in rules)


def test_a_rule_matches_inside_its_window_only() -> None:
    rules = _rules(_rule("storm", "2026-11-20T00:00:00+08:00", "2026-11-21T00:00:00+08:00"))
    assert active_match(rules, "我的快递到哪了", NOW) is rules[0]
    assert active_match(rules, "我的快递到哪了", NOW + timedelta(days=2)) is None
    assert active_match(rules, "我的快递到哪了", NOW - timedelta(days=2)) is None
    assert active_match(rules, "能便宜点吗", NOW) is None


def test_keywords_match_traditional_and_full_width_text() -> None:
    rules = _rules(_rule("storm", "2026-11-20T00:00:00+08:00", "2026-11-21T00:00:00+08:00", keywords=["到哪了"]))
    assert active_match(rules, "我的快遞到哪了？", NOW) is rules[0]


def test_a_pattern_matches_and_the_first_active_rule_wins() -> None:
    first = _rule("first", "2026-11-20T00:00:00+08:00", "2026-11-21T00:00:00+08:00", keywords=[], patterns=["延误"])
    second = _rule("second", "2026-11-19T00:00:00+08:00", "2026-11-22T00:00:00+08:00", keywords=["延误"])
    rules = _rules(first, second)
    assert active_match(rules, "物流是不是延误了", NOW) is rules[0]
    assert active_match(rules, "物流是不是延误了", NOW + timedelta(days=1)) is rules[1]


def test_the_workspace_holds_the_emergency_rules(corpus: Path) -> None:
    rule = _rule("storm", "2026-11-20T00:00:00+08:00", "2026-11-21T00:00:00+08:00")
    (corpus / "emergency.yaml").write_text(yaml.safe_dump({"rules": [rule]}, allow_unicode=True), encoding="utf-8")
    workspace, problems = validate(corpus)
    assert problems == []
    assert isinstance(workspace, Workspace)
    assert [r.id for r in workspace.emergency] == ["storm"]
    assert active_match(workspace.emergency, "我的快递到哪了", NOW) is workspace.emergency[0]
