"""``kefu audit``: the tone audit of chat logs counts what checking each reply alone counts."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

import agent.cli.audit_cmd  # noqa: F401  (registers the command until agent/cli registers it)
from agent.cli import main
from agent.cli.audit_cmd import audit
from agent.config import REPO_ROOT
from agent.guardrails import check, load_rules
from agent.guardrails.audit import Fields
from agent.guardrails.rules import RuleSet

LOG = Path(__file__).parent / "data" / "audit_log.jsonl"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(REPO_ROOT / "corpus" / "tone_rules.yaml")


def one_by_one(rules: RuleSet) -> tuple[int, Counter[str], dict[str, int]]:
    """Replies, findings per rule and flagged replies per agent, checking each line on its own."""
    last: dict[str, str] = {}
    replies = 0
    by_rule: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    for line in LOG.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row["role"] == "customer":
            last[row["conversation_id"]] = row["text"]
        elif row["role"] == "agent":
            replies += 1
            verdict = check(row["text"], rules=rules, query=last.get(row["conversation_id"]))
            by_rule.update(f.rule for f in verdict.findings)
            flagged[row["agent"]] += bool(verdict.findings)
    return replies, by_rule, dict(flagged)


@pytest.mark.parametrize(("workers", "chunk_bytes"), [(1, None), (2, None), (2, 300), (1, 1)])
def test_counts_equal_checking_each_reply_alone(
    rules: RuleSet, workers: int, chunk_bytes: int | None, tmp_path: Path
) -> None:
    """Whole file or cut into ranges of a few lines (the customer turn then often in an earlier range)."""
    summary, _ = audit(LOG, rules=rules, workers=workers, progress=False, chunk_bytes=chunk_bytes)
    replies, by_rule, flagged = one_by_one(rules)
    assert summary.replies == replies == 9
    assert summary.by_rule == by_rule
    assert {name: a["with_findings"] for name, a in summary.by_agent.items()} == flagged | {
        name: 0 for name in summary.by_agent if name not in flagged
    }
    assert summary.skipped == 2 and summary.customer_turns == 5 and len(summary.problems) == 2


def test_the_issue_examples_are_read_with_the_customer_turn_before_them(rules: RuleSet) -> None:
    summary, _ = audit(LOG, rules=rules, workers=1, progress=False)
    assert summary.by_rule["refusal_without_apology"] == 4  # c1 统一价 and 不能给您便宜, c2 抱歉 alone, c4 不包邮
    assert summary.by_rule["over_intimacy"] == 2  # 亲亲, 宝宝放心


def test_json_summary_findings_file_and_exit_code(
    rules: RuleSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "findings.jsonl"
    code = main(["audit", str(LOG), "--json", "--findings", str(out), "--workers", "2"])
    lines = LOG.read_text(encoding="utf-8").splitlines()
    stdout, stderr = capsys.readouterr()
    assert code == 1
    summary = json.loads(stdout)
    assert summary["replies"] == 9 and set(summary) >= {"replies", "by_rule", "by_agent"}
    assert "replies" in stderr  # the progress bar
    findings = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(findings) == sum(summary["by_rule"].values())
    for f in findings:
        assert f["reply"][f["start"] : f["end"]] == f["text"]
        assert json.loads(lines[f["line"] - 1])["text"] == f["reply"]  # the line number is the file's
    assert {f["agent"] for f in findings} <= set(summary["by_agent"])


def test_csv_with_other_column_names(rules: RuleSet, tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    rows = [json.loads(line) for line in LOG.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["会话", "客服", "时间", "角色", "内容"])
        for r in rows:
            role = {"customer": "买家", "agent": "卖家"}.get(r["role"], r["role"])
            writer.writerow([r["conversation_id"], r["agent"], r["time"], role, r["text"].replace("，", "，\n", 1)])
    fields = Fields("会话", "客服", "时间", "角色", "内容", "买家", "卖家")
    summary, _ = audit(path, rules=rules, fields=fields, workers=2, progress=False)
    assert summary.replies == 9 and summary.skipped == 1  # the 'bot' turn
    assert summary.by_rule["refusal_without_apology"] == 4


def test_html_report_highlights_spans(rules: RuleSet, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    audit(LOG, rules=rules, workers=1, progress=False, html=page)
    html = page.read_text(encoding="utf-8")
    assert 'title="over_intimacy, refusal_without_apology">亲亲</mark>' in html  # two findings overlap there
    assert '<mark class="contains_danshi" title="contains_danshi">但是</mark>' in html
    assert "by-agent" in html and "小王" in html


def test_findings_and_worst_keep_file_line_numbers_across_ranges(rules: RuleSet, tmp_path: Path) -> None:
    whole, cut = tmp_path / "whole.jsonl", tmp_path / "cut.jsonl"
    audit(LOG, rules=rules, workers=1, progress=False, findings=whole)
    audit(LOG, rules=rules, workers=2, progress=False, findings=cut, chunk_bytes=300)
    assert cut.read_text(encoding="utf-8") == whole.read_text(encoding="utf-8")
