"""The learned reading of refusals (agent/guardrails/refusal_model.py) beside the tone rules' cues."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import REPO_ROOT
from agent.errors import CorpusError
from agent.guardrails import check, load_rules, rules_for
from agent.guardrails.refusal_model import read_model
from agent.guardrails.refusal_train import main as train_main
from agent.guardrails.rules import RuleSet

CORPUS = REPO_ROOT / "corpus"
SHIPPED = CORPUS / "refusal_model.json"

# A decline in words no cue lists: the stock cannot be held, said as how stock works.
HOLD = ("能帮我留到明天吗", "库存按付款顺序锁定的，您喜欢的话建议早点拍下哦")


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(CORPUS / "tone_rules.yaml")


def test_the_model_reads_a_decline_the_cues_do_not_list(rules: RuleSet) -> None:
    query, draft = HOLD
    assert rules.refusal_model is not None
    bare = dataclasses.replace(rules, refusal_model=None, model_stamp=None)
    assert check(draft, rules=bare, query=query).is_refusal is False  # the rules alone miss it
    verdict = check(draft, rules=rules, query=query)
    assert verdict.is_refusal is True
    assert [f.rule for f in verdict.findings] == ["refusal_without_apology"]
    assert verdict.fixed is not None and verdict.fixed.startswith("非常抱歉")


def test_the_model_leaves_answers_and_apologised_declines_alone(rules: RuleSet) -> None:
    assert check("一般3天左右到，具体以快递派送为准", rules=rules, query="多久能到").ok
    # A decline that opens with the apology needs nothing more: the model is not asked.
    assert check("非常抱歉，" + HOLD[1], rules=rules, query=HOLD[0]).ok
    # Without the customer's question the model has nothing to read.
    assert check(HOLD[1], rules=rules).ok
    # A drafter's declared verdict stands: the model reads only undeclared drafts.
    assert check(HOLD[1], rules=rules, query=HOLD[0], declared_refusal=False).ok


def test_negative_wording_alone_is_read_by_the_model_when_the_question_is_there(rules: RuleSet) -> None:
    """A first-person 我们不能 beside an answer is negative language; whether the reply also declines
    is the model's reading of the question. Without the question, or without the model, the
    negative wording still makes it a refusal, as the rules always read it."""
    query, draft = "尺码标准吗", "标准尺码的，每个人身材不一样，我们不能替您决定，建议对照尺码表选择"
    verdict = check(draft, rules=rules, query=query)
    assert [f.rule for f in verdict.findings] == ["negative_language"] and verdict.is_refusal is False
    assert check(draft, rules=rules).is_refusal is True
    bare = dataclasses.replace(rules, refusal_model=None, model_stamp=None)
    assert check(draft, rules=bare, query=query).is_refusal is True
    # A decline said in the same kind of words stays one, read with its question.
    assert check("这个我们做不到哦，库存是按付款顺序锁定的", rules=rules, query=HOLD[0]).is_refusal is True


def test_a_drafting_case_trains_as_a_decline_without_its_apology(tmp_path: Path) -> None:
    """The model is asked only of drafts that do not open with 非常抱歉, so a golden decline is read
    with its opening apology cut off (the opener tone_rules.yaml compiles, greetings included); an
    answer is read as it is; test files are refused."""
    from agent.guardrails.refusal_train import TONE_RULES, read_rows

    cases = tmp_path / "cases.jsonl"
    rows = [
        {
            "id": "x1",
            "message": "能便宜点吗",
            "golden": "亲，非常抱歉，本店明码实价，领券更划算。",
            "expect_refusal": True,
        },
        {"id": "x2", "message": "发什么快递", "golden": "亲，默认发申通快递。", "expect_refusal": False},
    ]
    cases.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    read = read_rows([cases])
    assert [(r["draft"], r["query"], r["is_refusal"]) for r in read] == [
        ("本店明码实价,领券更划算。", "能便宜点吗", True),  # normalised, as the model reads it
        ("亲，默认发申通快递。", "发什么快递", False),
    ]
    # A greeting a supervisor adds to the rules is cut with the apology; before, the decline kept it.
    greeted = tmp_path / "greeted.jsonl"
    golden = "老板您好，非常抱歉给您带来不便，西藏要补15元。"
    row = {"id": "x3", "message": "包邮吗", "golden": golden, "expect_refusal": True}
    greeted.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    assert read_rows([greeted])[0]["draft"].startswith("老板您好")
    rules = tmp_path / "tone_rules.yaml"
    text = TONE_RULES.read_text(encoding="utf-8")
    assert "greetings: [亲, 您好," in text
    rules.write_text(text.replace("greetings: [亲, 您好,", "greetings: [老板, 亲, 您好,"), encoding="utf-8")
    assert read_rows([greeted], rules)[0]["draft"] == "西藏要补15元。"
    test_file = tmp_path / "test.jsonl"
    test_file.write_text(cases.read_text(encoding="utf-8"), encoding="utf-8")
    assert train_main(["--out", str(tmp_path / "m.json"), str(test_file)]) == 2


def test_retraining_reproduces_the_shipped_model(tmp_path: Path) -> None:
    out = tmp_path / "model.json"
    assert train_main(["--out", str(out)]) == 0
    fresh, shipped = read_model(out), read_model(SHIPPED)
    assert (fresh.chars, fresh.about["drafts"]) == (shipped.chars, shipped.about["drafts"])
    assert fresh.about["trained_on"] == shipped.about["trained_on"], "retrain after the labelled files change"
    keys = set(fresh.weights) | set(shipped.weights)
    worst = max(abs(fresh.weights.get(k, 0.0) - shipped.weights.get(k, 0.0)) for k in keys)
    assert worst <= 5e-4 and abs(fresh.bias - shipped.bias) <= 5e-4


def test_training_refuses_the_test_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = train_main([str(REPO_ROOT / "eval" / "guardrail" / "test.jsonl"), "--out", str(tmp_path / "m.json")])
    assert rc == 2
    assert "test split" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()
    assert train_main([str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "m.json")]) == 2
    assert "no labelled file" in capsys.readouterr().err


def _corpus_copy(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / "tone_rules.yaml", corpus / "tone_rules.yaml")
    shutil.copy(SHIPPED, corpus / "refusal_model.json")
    return corpus


def test_without_the_model_line_only_the_rules_decide(tmp_path: Path) -> None:
    corpus = _corpus_copy(tmp_path)
    path = corpus / "tone_rules.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("  model: refusal_model.json\n", ""), encoding="utf-8")
    bare = load_rules(path)
    assert bare.refusal_model is None
    assert check(HOLD[1], rules=bare, query=HOLD[0]).is_refusal is False


def test_a_broken_model_file_is_a_corpus_error_naming_the_field(tmp_path: Path) -> None:
    corpus = _corpus_copy(tmp_path)
    (corpus / "refusal_model.json").write_text('{"format": 1, "chars": 0}', encoding="utf-8")
    with pytest.raises(CorpusError) as err:
        load_rules(corpus / "tone_rules.yaml")
    assert "refusal.model" in err.value.message and "chars" in err.value.message
    (corpus / "refusal_model.json").unlink()
    with pytest.raises(CorpusError) as err:
        load_rules(corpus / "tone_rules.yaml")
    assert "refusal.model" in err.value.message and "不存在" in err.value.message


def test_rules_for_reloads_when_only_the_model_file_changes(tmp_path: Path) -> None:
    corpus = _corpus_copy(tmp_path)
    first = rules_for(corpus)
    assert first.refusal_model is not None and check(HOLD[1], rules=first, query=HOLD[0]).is_refusal
    body = json.loads(SHIPPED.read_text(encoding="utf-8"))
    body["bias"] = -50.0  # a model that never reads a decline
    model = corpus / "refusal_model.json"
    model.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = rules_for(corpus)
    assert second is not first and second.refusal_model is not None
    assert check(HOLD[1], rules=second, query=HOLD[0]).is_refusal is False


def test_kefu_check_reads_the_model_without_numpy() -> None:
    code = (
        "import sys; from agent.cli import main; rc = main(['check', '"
        + HOLD[1]
        + "', '--query', '"
        + HOLD[0]
        + "']); print(rc, 'numpy' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert proc.stdout.strip().splitlines()[-1] == "1 False", proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "draft",
    [
        "🙏非常抱歉，库存是按付款顺序锁定的，暂时保留不了哦",
        "同学您好，非常抱歉，我们没有单独的学生价哦，现在有店铺券可以领",
    ],
)
def test_an_emoji_or_a_greeting_before_the_apology_still_opens_with_it(draft: str, rules: RuleSet) -> None:
    verdict = check(draft, rules=rules, query="能帮我留两天吗")
    assert not any(f.rule == "refusal_without_apology" for f in verdict.findings)
