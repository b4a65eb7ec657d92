"""Findings point at the text the person wrote, whatever normalisation had to undo."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from agent.config import REPO_ROOT
from agent.guardrails import check, load_rules
from agent.guardrails.rules import RuleSet
from agent.text import _dropped, fold_width, normalize, to_simplified


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(REPO_ROOT / "corpus" / "tone_rules.yaml")


def spans(draft: str, rules: RuleSet, **kwargs: object) -> dict[str, list[tuple[int, int, str]]]:
    verdict = check(draft, rules=rules, **kwargs)  # type: ignore[arg-type]
    found: dict[str, list[tuple[int, int, str]]] = {}
    for f in verdict.findings:
        assert draft[f.start : f.end] == f.text
        found.setdefault(f.rule, []).append((f.start, f.end, f.text))
    return found


@pytest.mark.parametrize(
    ("draft", "rule", "expected"),
    [
        ("親愛的顧客，您好", "over_intimacy", "親愛的"),
        ("這款很好，但是庫存不多了", "contains_danshi", "但是"),
        ("我們不能承諾具體到貨時間", "negative_language", "我們不能"),
        ("亲，这款很好，但\u200b是库存不多了", "contains_danshi", "但\u200b是"),
        ("亲，这款很好，但 是库存不多了", "contains_danshi", "但 是"),
        ("亲，这款很好，但\u3000是库存不多了", "contains_danshi", "但\u3000是"),
        ("ＥＭＳ２０元！但是偏远地区慢一点", "contains_danshi", "但是"),
        ("\u200b\u200b亲亲亲亲，在的", "over_intimacy", "亲亲亲亲"),
        ("亲，我\u200b们\u200d不能保证明天到", "negative_language", "我\u200b们\u200d不能"),
        # 这边 is the shop's side (writers H and M): 地址这边改不了 is a first-person cannot.
        ("很抱歉亲，包裹已经发出，地址这边改不了了", "negative_language", "这边改不了"),
    ],
)
def test_a_finding_spans_the_original_characters(draft: str, rule: str, expected: str, rules: RuleSet) -> None:
    found = spans(draft, rules)
    assert [text for _, _, text in found[rule]] == [expected]
    start, end, _ = found[rule][0]
    assert (start, end) == (draft.index(expected), draft.index(expected) + len(expected))


def test_a_weak_opener_is_reported_where_it_stands(rules: RuleSet) -> None:
    draft = "親！不好\u200b意思，這款Ｍ碼沒貨了。"
    found = spans(draft, rules)
    assert found["refusal_without_apology"] == [(2, 7, "不好\u200b意思")]


def test_a_refusal_without_any_apology_reports_its_first_sentence(rules: RuleSet) -> None:
    draft = "  这款已经卖完了！您看看别的款式吧。"
    found = spans(draft, rules)
    assert found["refusal_without_apology"] == [(2, 10, "这款已经卖完了！")]


def test_a_fix_of_a_traditional_draft_is_written_in_traditional(rules: RuleSet) -> None:
    verdict = check("親，這款很受歡迎，但是庫存不多了。", rules=rules)
    assert verdict.fixed == "親，這款很受歡迎，不過庫存不多了。"


def test_a_fix_replaces_the_obfuscated_span_whole(rules: RuleSet) -> None:
    assert check("亲，面料很好，但\u200b是要手洗。", rules=rules).fixed == "亲，面料很好，不过要手洗。"
    assert check("亲亲亲亲，在的", rules=rules).fixed == "亲，在的"


def _reference_normalize(text: str, max_run: int = 2) -> tuple[str, tuple[int, ...]]:
    """The plain per-character definition that agent.text.normalize computes faster."""
    converted = to_simplified(text)
    if len(converted) != len(text):
        converted = "".join((to_simplified(ch) or ch)[:1] for ch in text)
    out: list[str] = []
    index: list[int] = []
    run = 0
    for i, ch in enumerate(converted):
        ch = fold_width(ch).lower()
        if ch.isspace() or _dropped(ch):
            continue
        run = run + 1 if out and out[-1] == ch else 1
        if run > max_run:
            continue
        out.append(ch)
        index.append(i)
    return "".join(out), tuple(index)


def test_fast_normalisation_agrees_with_the_per_character_definition() -> None:
    invisible = ["\u200b", "\u200d", "\u3000", "\ufeff", "\u202e", "\x00", "\u00ad", "\U00020000", "\U000e0041"]
    emoji = ["😊", "🌸", "👍", "🏻", "\ufe0f"]  # an emoji alone keeps a draft on the fast path
    alphabet = [*"亲但是不能我们親愛的們說這個最哈，！？：；（）～。…ＡＢａ１ AZaz09\t\n", *invisible, *emoji]
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        max_run = rng.choice([1, 2, 3])
        norm = normalize(text, max_run)
        assert (norm.text, tuple(norm.index)) == _reference_normalize(text, max_run), repr(text)


def test_the_automaton_scan_finds_what_the_regex_scan_finds(rules: RuleSet) -> None:
    """The Aho-Corasick scan (ahocorasick_rs) and the trie regex it replaces where that library is
    missing give the same verdicts: on every labelled draft and on random strings of the literals'
    pieces, where keywords overlap, nest and run into allow words."""
    assert rules.finder is not None  # a dependency: the fast path is the one users run
    regex_only = dataclasses.replace(rules, finder=None)
    labelled = [REPO_ROOT / "tests" / "data" / "guardrail_table.jsonl"]
    labelled += [REPO_ROOT / "eval" / "guardrail" / f"{split}.jsonl" for split in ("dev", "test")]
    pairs = [
        (row["draft"], row.get("query"))
        for path in labelled
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
        for row in [json.loads(line)]
    ]
    pieces = [literal[i:j] for literal in rules.literals for i in range(len(literal)) for j in (i + 1, len(literal))]
    rng = random.Random(11)
    for _ in range(3000):
        pairs.append(("".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))), None))
    for draft, query in pairs:
        assert check(draft, rules=rules, query=query) == check(draft, rules=regex_only, query=query), draft
