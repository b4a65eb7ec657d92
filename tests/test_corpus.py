"""The corpus a supervisor edits: it validates, it is big enough, and a broken file says where."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import REPO_ROOT, Settings
from agent.corpus import fill, load_corpus, load_shop
from agent.errors import UnknownShopError
from agent.workspace import validate_workspace
from tests.fakes.corpus import private_corpus

REAL = REPO_ROOT / "corpus"

GOOD = """\
category: greeting
label: 问候
scripts:
  - id: greeting.hello
    title: 顾客打招呼
    questions: [在吗, 有人吗, 你好, 您好在不在, 哈喽, 在不在呀]
    reply: 您好，欢迎光临{shop_name}，请问有什么可以帮您？
    source: {seed: 003_082a872a65a9fa36.txt, section: 一}
"""


@pytest.fixture
def corpus_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the corpus's shared files with one small script file."""
    return private_corpus(tmp_path / "corpus", monkeypatch, {"greeting.yaml": GOOD})


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_real_corpus_validates_and_is_big_enough(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "corpus", "validate")
    assert code == 0, err
    code, out, _ = run_cli(capsys, "corpus", "stats", "--json")
    stats = json.loads(out)
    assert code == 0
    assert stats["scripts"] >= 80
    assert stats["questions"] >= 600
    assert len(stats["categories"]) >= 20


def test_every_script_has_six_variants_and_a_seed_source() -> None:
    corpus = load_corpus(REAL)
    seeds = {p.name for p in (REPO_ROOT.parent / "shared" / "seeds").glob("*.txt")} or None
    for script in corpus.scripts:
        assert len(script.questions) >= 6, script.id
        if seeds:
            assert script.source.seed in seeds, script.id


def test_seed_003_corruptions_never_reach_a_reply() -> None:
    corrupt = ("旳", "但愿", "尚有", "简朴", "才干")
    for script in load_corpus(REAL).scripts:
        for mark in corrupt:
            assert mark not in script.reply, (script.id, mark)


def test_declining_scripts_open_with_the_apology() -> None:
    for script in load_corpus(REAL).scripts:
        if script.declines:
            head = script.reply.removeprefix("亲，").removeprefix("您好，")
            assert head.startswith("非常抱歉"), script.id


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("category: greeting\nlabel: 问候\nscripts: [\n", ["greeting.yaml:", "invalid YAML"]),
        (GOOD.replace("    title: 顾客打招呼\n", ""), ["greeting.yaml", "script greeting.hello", "field title"]),
        (GOOD + GOOD.split("scripts:\n")[1].replace("在吗, 有人吗, 你好", "a1, a2, a3"), ["field id", "duplicate id"]),
        (GOOD.replace("{shop_name}", "{shop_nickname}"), ["script greeting.hello", "field reply", "{shop_nickname}"]),
        (GOOD.replace("哈喽", "在吗"), ["field questions.4", "在吗"]),
        (GOOD.replace("[在吗, 有人吗, 你好, 您好在不在, 哈喽, 在不在呀]", "[在吗, 有人吗]"), ["field questions"]),
    ],
    ids=["bad-yaml", "missing-field", "duplicate-id", "undefined-variable", "duplicate-question", "too-few-questions"],
)
def test_broken_file_gives_one_line_naming_file_and_field(
    corpus_dir: Path, capsys: pytest.CaptureFixture[str], broken: str, expected: list[str]
) -> None:
    (corpus_dir / "scripts" / "greeting.yaml").write_text(broken, encoding="utf-8")
    code, _, err = run_cli(capsys, "corpus", "validate")
    assert code == 1
    assert "Traceback" not in err
    problem_lines = [line for line in err.splitlines() if not line.startswith("kefu: error")]
    assert problem_lines, err
    matching = [line for line in problem_lines if all(part in line for part in expected)]
    assert matching, err


def test_validate_passes_on_the_small_good_corpus(corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "corpus", "validate")
    assert code == 0, err
    assert "1 scripts" in out


def test_a_shop_overrides_the_default_values() -> None:
    default = load_shop(REAL, "default")
    tmall = load_shop(REAL, "tmall_flagship")
    assert default.vars["default_courier"] == "申通"
    assert tmall.vars["default_courier"] != default.vars["default_courier"]
    assert tmall.vars["remote_fee"] == default.vars["remote_fee"]  # inherited
    assert fill("{default_courier}{remote_fee}", tmall.vars) == tmall.vars["default_courier"] + "15元"


def test_unknown_shop_names_the_known_ones() -> None:
    with pytest.raises(UnknownShopError, match="default"):
        load_shop(REAL, "../etc/passwd")


def test_validate_reports_every_problem_not_just_the_first(corpus_dir: Path) -> None:
    text = GOOD.replace("{shop_name}", "{nope}").replace("哈喽", "在吗")
    (corpus_dir / "scripts" / "greeting.yaml").write_text(text, encoding="utf-8")
    workspace, problems = validate_workspace(Settings(corpus_dir=corpus_dir))
    assert workspace is None
    assert any("{nope}" in p for p in problems)
    assert any("field questions.4" in p for p in problems)


def test_console_script_prints_no_traceback_on_a_broken_corpus(corpus_dir: Path) -> None:
    (corpus_dir / "scripts" / "greeting.yaml").write_text("scripts: {", encoding="utf-8")
    env = {"KEFU_CORPUS_DIR": str(corpus_dir), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", "corpus", "stats"], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "greeting.yaml" in proc.stderr


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("redaction.yaml", "patterns:\n  phone: '('\n", "field patterns.phone"),
        (
            "composer.yaml",
            "openers: []\nopen_with: x\nhandoff: y\nmin_coverage: 2\nmin_shared_run: 3\n",
            "min_coverage",
        ),
        (
            "composer.yaml",
            "openers: []\nopen_with: x\nhandoff: y\nmin_coverage: 0.3\nmin_shared_run: 3\n"
            "state_cues: {paid: ['付(']}\n",
            "not a regular expression",
        ),
        ("context.yaml", "unread: ['(\\d']\n", "not a regular expression"),
        ("context.yaml", "followup_cue: [那]\n", "followup_cue"),
        ("retrieval/split.yaml", "marks: '？'\nquestion_pattern: '(\\w'\n", "question_pattern"),
    ],
)
def test_other_data_files_are_validated(
    corpus_dir: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, expected: str
) -> None:
    (corpus_dir / name).parent.mkdir(exist_ok=True)
    (corpus_dir / name).write_text(text, encoding="utf-8")
    code, _, err = run_cli(capsys, "corpus", "validate")
    assert code == 1
    assert any(name in line and expected in line for line in err.splitlines()), err


def test_with_order_words_may_name_the_orders_values_and_nothing_unknown(corpus_dir: Path) -> None:
    """A script's with_order words may use {tracking_no} and the other order values beside the
    shop's; any other unknown variable is reported like one in the reply."""
    good = GOOD.replace(
        "    source:",
        "    with_order:\n      reply: 您好，您的订单已由{order_courier}发出，单号{tracking_no}。\n    source:",
    )
    (corpus_dir / "scripts" / "greeting.yaml").write_text(good, encoding="utf-8")
    workspace, problems = validate_workspace(Settings(corpus_dir=corpus_dir))
    assert problems == [] and workspace is not None
    bad = good.replace("单号{tracking_no}", "单号{parcel_code}")
    (corpus_dir / "scripts" / "greeting.yaml").write_text(bad, encoding="utf-8")
    workspace, problems = validate_workspace(Settings(corpus_dir=corpus_dir))
    assert workspace is None
    assert any("with_order.reply" in p and "{parcel_code}" in p for p in problems), problems


def test_a_key_said_twice_in_a_data_file_is_refused_with_its_line(
    corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """YAML keeps the last of two equal keys silently: an entry a supervisor added above an
    older one of the same name would be lost without a word."""
    (corpus_dir / "composer.yaml").write_text(
        "openers: []\nopen_with: x\nhandoff: y\nmin_coverage: 0.3\nmin_shared_run: 3\n"
        "asserts:\n  payment.paid_thanks: [paid]\n  payment.paid_thanks: [delivered]\n",
        encoding="utf-8",
    )
    code, _, err = run_cli(capsys, "corpus", "validate")
    assert code == 1
    assert "composer.yaml:8" in err and "duplicate key 'payment.paid_thanks'" in err, err


def test_with_order_words_that_decline_are_checked_as_a_decline(corpus_dir: Path) -> None:
    """A with_order variant that declines must open with the apology like any declining reply."""
    declining = GOOD.replace(
        "    source:",
        "    with_order:\n      reply: 您这单{order_amount}，还差{gift_shortfall}才送小礼品。\n"
        "      declines: true\n    source:",
    )
    (corpus_dir / "scripts" / "greeting.yaml").write_text(declining, encoding="utf-8")
    workspace, problems = validate_workspace(Settings(corpus_dir=corpus_dir))
    assert workspace is None
    assert any("with_order.reply" in p and "refusal_without_apology" in p for p in problems), problems
