"""kefu eval's command line: a flag that cannot apply is an error, and piped tables are not cut."""

from __future__ import annotations

import re

import pytest

from agent.cli import main
from agent.config import REPO_ROOT

SCRIPT_SUITE = REPO_ROOT / "eval" / "suites" / "script.yaml"


def test_prompt_on_a_suite_without_an_llm_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "run", str(SCRIPT_SUITE), "--prompt", "draft.v2", "--limit", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "--prompt" in err and "openai" in err


def test_an_unknown_backend_names_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "run", str(SCRIPT_SUITE), "--backend", "gpt"]) == 2
    assert "script" in capsys.readouterr().err


def test_the_dry_run_table_is_not_cut_at_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "run", str(REPO_ROOT / "eval" / "suites" / "openai.yaml"), "--dry-run", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out  # rich marks a cut cell with an ellipsis
    header = next(line for line in out.splitlines() if "prompt tok" in line)
    assert re.search(r"max out tok", header) and "+revise" in header
