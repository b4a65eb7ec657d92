"""``kefu check``: exit codes, human and JSON output, and JSON lines from stdin."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import REPO_ROOT


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def run_jsonl(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, lines: list[str]
) -> tuple[int, list[dict[str, object]]]:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    code, out, err = run(capsys, "--jsonl")
    assert "Traceback" not in err
    return code, [json.loads(line) for line in out.splitlines()]


def test_a_clean_draft_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "亲，不客气哦，这款不但是纯棉的，而且不容易褪色。")
    assert code == 0
    assert out.startswith("ok")


def test_findings_exit_1_with_rule_span_message_and_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "亲亲，这款很好，但是库存不多了")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("over_intimacy  0-2  '亲亲'  ")
    assert lines[1].startswith("contains_danshi  8-10  '但是'  ")
    assert "不过" in lines[1]  # the message says what to write instead
    assert lines[-1] == "fixed: 亲，这款很好，不过库存不多了"


def test_a_draft_without_a_safe_fix_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "您就是我们的上帝")
    assert code == 1
    assert out.splitlines()[-1] == "fixed: (no safe fix)"


def test_json_output_and_the_query(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "亲，申通一般2到4天送达。", "--query", "明天一定能到吗", "--json")
    assert code == 1
    verdict = json.loads(out)
    assert verdict["ok"] is False and verdict["is_refusal"] is True
    assert [v["rule"] for v in verdict["violations"]] == ["refusal_without_apology"]
    assert verdict["fixed"] == "亲，非常抱歉，申通一般2到4天送达。"
    assert "非常抱歉" in out  # ensure_ascii=False: Chinese stays readable


def test_declared_refusal_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "亲，这个需要主管确认。")[0] == 0
    code, out, _ = run(capsys, "亲，这个需要主管确认。", "--refusal", "--json")
    assert code == 1 and json.loads(out)["is_refusal"] is True


@pytest.mark.parametrize("args", [(), ("   ",), ("\u200b",), ("text", "--jsonl")])
def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("kefu: ")


def test_jsonl_keeps_order_and_survives_a_malformed_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [
        json.dumps({"id": "a", "draft": "亲，您好！"}),
        '{"id": "b", "draft": ',
        json.dumps({"id": "c", "draft": 5}),
        "",
        json.dumps({"id": 4, "draft": "亲，现在有满减活动哦。", "query": "能便宜点吗"}, ensure_ascii=False),
        "[1, 2]",
        json.dumps({"id": "f", "draft": "但是"}),
    ]
    code, records = run_jsonl(capsys, monkeypatch, lines)
    assert code == 1
    assert [r["id"] for r in records] == ["a", None, "c", 4, None, "f"]
    assert records[0] == {"id": "a", "ok": True, "is_refusal": False, "violations": [], "fixed": None}
    assert "error" in records[1] and "error" in records[2] and "error" in records[4]
    assert records[3]["is_refusal"] is True
    assert records[3]["violations"][0]["rule"] == "refusal_without_apology"
    assert records[5]["violations"] == [
        {
            "rule": "contains_danshi",
            "start": 0,
            "end": 2,
            "text": "但是",
            "message": records[5]["violations"][0]["message"],
        }
    ]
    assert records[5]["fixed"] == "不过"


def test_jsonl_all_clean_exits_0(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, records = run_jsonl(capsys, monkeypatch, [json.dumps({"id": i, "draft": "亲，您好"}) for i in range(3)])
    assert code == 0
    assert [r["id"] for r in records] == [0, 1, 2]


def test_the_console_script_returns_the_exit_code(tmp_path: Path) -> None:
    kefu = REPO_ROOT / ".venv" / "bin" / "kefu"
    found = subprocess.run([str(kefu), "check", "亲，但是"], capture_output=True, text=True, timeout=60)
    clean = subprocess.run([str(kefu), "check", "亲，您好"], capture_output=True, text=True, timeout=60)
    assert (found.returncode, clean.returncode) == (1, 0), found.stderr
    # `check` ends the process without the interpreter's teardown: everything written still arrives.
    lines = "".join(json.dumps({"id": i, "draft": "亲，但是" if i % 2 else "亲，您好"}) + "\n" for i in range(3000))
    piped = subprocess.run([str(kefu), "check", "--jsonl"], input=lines, capture_output=True, text=True, timeout=120)
    records = [json.loads(line) for line in piped.stdout.splitlines()]
    assert piped.returncode == 1 and [r["id"] for r in records] == list(range(3000)), piped.stderr
    assert [r["ok"] for r in records[:4]] == [True, False, True, False]


def test_kefu_check_imports_nothing_of_retrieval_or_chroma() -> None:
    code = (
        "import sys\n"
        "from agent.cli import main\n"
        "main(['check', '亲，您好'])\n"
        "heavy = ('chromadb', 'langchain', 'agent.retrieval', 'agent.drafting', 'jieba', 'openai', 'fastapi')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    python = REPO_ROOT / ".venv" / "bin" / "python"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
