"""Issue 11, must show: a copied workspace's own tone rules and shop values are what drafting,
``check()`` and the shop tools apply, never the repository's."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

import agent
from agent.cli import main
from agent.config import LLM_BACKEND, REPO_ROOT, get_settings
from agent.drafting.base import Proposal
from agent.drafting.fake import ScriptedBackend
from agent.drafting.pipeline import Drafter
from agent.retrieval import FakeRetriever, Hit
from agent.shoptools import phrases, welcome
from agent.types import Draft, Message, RuleId
from agent.workspace import Workspace, load_workspace
from tests.fakes.corpus import add_tone_word, edit_yaml, workspace_copy

WORD = "全场包邮"  # in the default shop's welcome; in no script, phrase or emergency reply
TEXT = f"亲，本店{WORD}，默认发申通快递哦。"
RULE = "over_intimacy"


@pytest.fixture
def shipped() -> Workspace:
    return load_workspace(REPO_ROOT)


@pytest.fixture
def plain_copy(tmp_path: Path) -> Workspace:
    """A copy of the shipped workspace, unchanged."""
    return load_workspace(workspace_copy(tmp_path / "plain"))


@pytest.fixture
def strict_copy(tmp_path: Path) -> Workspace:
    """A copy whose tone rule ``RULE`` also forbids ``WORD``."""
    root = workspace_copy(tmp_path / "strict")
    add_tone_word(root / "corpus", RULE, WORD)
    return load_workspace(root)


TONE_RULES = set(get_args(RuleId))


def tone(draft: Draft) -> list[tuple[str, str]]:
    """The draft's tone findings (the grounding check's claims and citations are another matter)."""
    return [(f.rule, f.text) for f in draft.findings if f.rule in TONE_RULES]


def drafter(workspace: Workspace, text: str = TEXT) -> tuple[Drafter, ScriptedBackend]:
    """A Drafter over ``workspace`` whose LLM backend answers ``text`` (also to every revision)."""
    backend = ScriptedBackend([Proposal(text, False, ["shipping.default_courier"])] * 3)
    hit = Hit("shipping.default_courier", "shipping", 0.9)
    retriever = FakeRetriever([[hit]])
    return Drafter(get_settings(), workspace=workspace, retriever_override=retriever, llm_override=backend), backend


def test_the_shipped_rules_pass_the_text(shipped: Workspace) -> None:
    assert agent.check(TEXT, workspace=shipped).ok
    assert agent.check(TEXT).ok  # the configured workspace is the shipped one here


def test_check_applies_the_copys_changed_tone_rule(strict_copy: Workspace, plain_copy: Workspace) -> None:
    verdict = agent.check(TEXT, workspace=strict_copy)
    assert not verdict.ok
    assert [(f.rule, f.text) for f in verdict.findings] == [(RULE, WORD)]
    assert agent.check(TEXT, rules=strict_copy.tone).findings == verdict.findings
    assert agent.check(TEXT, workspace=plain_copy).ok  # a copy without the change does not flag it
    assert strict_copy.version != plain_copy.version


def test_a_drafter_on_the_copy_applies_its_changed_tone_rule(strict_copy: Workspace) -> None:
    strict, backend = drafter(strict_copy)
    draft = strict.draft(Message(text="包邮吗"), backend=LLM_BACKEND)
    assert draft.backend == LLM_BACKEND
    assert draft.status == "needs_review"
    assert tone(draft) == [(RULE, WORD)]
    assert backend.calls[0] == "draft" and "revise" in backend.calls  # the finding was sent back to revise
    assert backend.revisions[0][0].rule == RULE


def test_a_drafter_on_an_unchanged_copy_passes_the_same_text(plain_copy: Workspace) -> None:
    plain, backend = drafter(plain_copy)
    draft = plain.draft(Message(text="包邮吗"), backend=LLM_BACKEND)
    assert tone(draft) == []
    assert draft.text == TEXT
    assert backend.calls == ["draft"]  # nothing for the guard loop to revise


def test_a_rule_removed_in_the_copy_no_longer_flags(tmp_path: Path, shipped: Workspace) -> None:
    """The fault issue 11 found: a copy's rules, not the repository's, decide (here: 但是 no longer flagged)."""
    root = workspace_copy(tmp_path / "lenient")
    edit_yaml(  # the copy's contains_danshi rule no longer lists 但是
        root / "corpus" / "tone_rules.yaml",
        lambda data: data["rules"]["contains_danshi"].update(keywords=[{"words": ["但是但是"]}]),
    )
    lenient = load_workspace(root)
    text = "亲，这款是纯棉的，但是建议手洗。"
    assert "contains_danshi" in {f.rule for f in agent.check(text, workspace=shipped).findings}
    assert "contains_danshi" not in {f.rule for f in agent.check(text, workspace=lenient).findings}
    draft = drafter(lenient, text)[0].draft(Message(text="能机洗吗"), backend=LLM_BACKEND)
    assert (tone(draft), draft.text) == ([], text)  # nothing to fix under the copy's rules
    strict = drafter(shipped, text)[0].draft(Message(text="能机洗吗"), backend=LLM_BACKEND)
    assert "但是" not in strict.text  # the shipped rule applied its safe fix (不过)
    assert "guardrail applied a safe fix" in strict.notes


def test_the_welcome_is_checked_by_the_copys_rules(strict_copy: Workspace, plain_copy: Workspace) -> None:
    strict = welcome(strict_copy, "default")
    assert WORD in strict.text
    assert not strict.ok
    assert [(f.rule, f.text) for f in strict.violations] == [(RULE, WORD)]
    assert welcome(plain_copy, "default").ok
    assert welcome(strict_copy, "tmall_flagship").ok is False  # the shop inherits the default's welcome


def test_the_shop_tools_fill_the_copys_shop_values(tmp_path: Path, shipped: Workspace) -> None:
    root = workspace_copy(tmp_path / "shop")

    def rename(data: dict[str, object]) -> None:
        values = data["vars"]
        assert isinstance(values, dict)
        values["shop_name"] = "青禾小铺"
        values["default_courier"] = "韵达"

    edit_yaml(root / "corpus" / "shops" / "default.yaml", rename)
    copy = load_workspace(root)
    assert "青禾小铺" in welcome(copy, "default").text
    assert "青禾小铺" not in welcome(shipped, "default").text
    copied = {p.script_id: p.text for p in phrases(copy, category="shipping")}
    original = {p.script_id: p.text for p in phrases(shipped, category="shipping")}
    assert any("韵达" in t for t in copied.values())
    assert not any("韵达" in t for t in original.values())
    assert copied.keys() == original.keys()
    # tmall_flagship names its own courier: the copy's default does not override what a shop sets
    tmall = {p.script_id: p.text for p in phrases(copy, "tmall_flagship", category="shipping")}
    assert not any("韵达" in t for t in tmall.values())
    assert "木夕天猫旗舰店" in welcome(copy, "tmall_flagship").text


def test_the_cli_tools_read_the_selected_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = workspace_copy(tmp_path / "cli")
    add_tone_word(root / "corpus", RULE, WORD)
    monkeypatch.setenv("KEFU_WORKSPACE", str(root))
    monkeypatch.delenv("KEFU_CORPUS_DIR")
    get_settings.cache_clear()
    assert get_settings().corpus_dir == root / "corpus"
    code = main(["welcome"])
    out, err = capsys.readouterr()
    assert WORD in out
    assert code == 1
    assert RULE in err
    assert main(["check", TEXT]) == 1  # kefu check uses the workspace's rules too
    capsys.readouterr()
