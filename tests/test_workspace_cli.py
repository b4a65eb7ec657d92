"""``kefu init DIR`` writes a starter workspace; ``kefu corpus validate`` names file, script and field;
KEFU_WORKSPACE, else the current directory, selects the workspace."""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import REPO_ROOT, default_workspace, get_settings
from agent.workspace import load_workspace, validate_workspace
from tests.fakes.corpus import workspace_copy


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    return all(same_tree(a / d, b / d) for d in cmp.common_dirs)


@pytest.fixture
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workspace is chosen by KEFU_WORKSPACE or the current directory, not KEFU_CORPUS_DIR."""
    monkeypatch.delenv("KEFU_CORPUS_DIR", raising=False)
    monkeypatch.delenv("KEFU_PROMPTS_DIR", raising=False)
    monkeypatch.delenv("KEFU_WORKSPACE", raising=False)
    get_settings.cache_clear()


def test_init_writes_the_default_corpus_and_prompts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "shop"
    code, out, err = run(capsys, "init", str(target))
    assert code == 0, err
    assert (target / "corpus" / "scripts").is_dir()
    assert (target / "corpus" / "shops" / "default.yaml").is_file()
    assert (target / "corpus" / "tone_rules.yaml").is_file()
    assert (target / "prompts" / "draft.v1.yaml").is_file()
    source = default_workspace()
    assert same_tree(source / "corpus", target / "corpus")
    assert same_tree(source / "prompts", target / "prompts")
    assert str(target) in out
    assert load_workspace(target).corpus.stats() == load_workspace(REPO_ROOT).corpus.stats()


def test_init_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "shop"
    assert run(capsys, "init", str(target))[0] == 0
    edited = target / "corpus" / "shops" / "default.yaml"
    edited.write_text(edited.read_text(encoding="utf-8") + "# my edit\n", encoding="utf-8")

    code, out, err = run(capsys, "init", str(target))
    assert out == ""
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "--force" in err and "already exists" in err
    assert edited.read_text(encoding="utf-8").endswith("# my edit\n")  # nothing was touched

    assert run(capsys, "init", str(target), "--force")[0] == 0
    assert not edited.read_text(encoding="utf-8").endswith("# my edit\n")


def test_init_refuses_a_directory_with_only_prompts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "shop"
    (target / "prompts").mkdir(parents=True)
    code, _, err = run(capsys, "init", str(target))
    assert code == 2
    assert "prompts" in err
    assert not (target / "corpus").exists()


def test_the_current_directory_is_the_workspace(
    tmp_path: Path, no_overrides: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "shop"
    assert run(capsys, "init", str(target))[0] == 0
    monkeypatch.delenv("KEFU_DATA_DIR")
    monkeypatch.chdir(target)
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.workspace == target
    assert settings.corpus_dir == target / "corpus"
    assert settings.prompts_dir == target / "prompts"
    assert settings.data_dir == target / ".kefu"
    code, out, err = run(capsys, "corpus", "validate")
    assert code == 0, err
    assert "ok:" in out


def test_kefu_workspace_selects_a_workspace_and_validate_names_file_script_and_field(
    tmp_path: Path, no_overrides: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = workspace_copy(tmp_path / "ws")
    path = root / "corpus" / "scripts" / "shipping.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("    title: 顾客问默认发什么快递\n", ""), encoding="utf-8")
    monkeypatch.setenv("KEFU_WORKSPACE", str(root))
    get_settings.cache_clear()

    code, out, err = run(capsys, "corpus", "validate")
    assert code == 1
    assert "Traceback" not in err
    problems = [line for line in err.splitlines() if not line.startswith("kefu:")]
    assert any(str(path) in p and "script shipping.default_courier" in p and "field title" in p for p in problems), err
    assert str(root) in err.splitlines()[-1]  # the summary names the workspace

    code, out, _ = run(capsys, "corpus", "validate", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False and report["version"] is None
    assert any("script shipping.default_courier" in p and "field title" in p for p in report["problems"])


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("shop-field", ["tmall_flagship.yaml", "field platform"]),
        ("prompt-missing", ["revise.v1.yaml", "missing"]),
        ("prompt-field", ["draft.v1.yaml", "temperature"]),
    ],
)
def test_validate_names_the_file_and_field_of_a_broken_shop_or_prompt(
    tmp_path: Path,
    no_overrides: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    broken: str,
    expected: list[str],
) -> None:
    root = workspace_copy(tmp_path / "ws")
    if broken == "shop-field":
        shop = root / "corpus" / "shops" / "tmall_flagship.yaml"
        text = shop.read_text(encoding="utf-8")
        assert "\nplatform: 天猫\n" in text
        # A wrong value, not a second key (which the loader refuses as such, with its line).
        shop.write_text(text.replace("\nplatform: 天猫\n", "\nplatform: [天猫]\n"), encoding="utf-8")
    elif broken == "prompt-missing":
        (root / "prompts" / "revise.v1.yaml").unlink()
    else:
        prompt = root / "prompts" / "draft.v1.yaml"
        text = prompt.read_text(encoding="utf-8")
        assert "temperature:" in text
        lines = [
            "  temperature: warm" if line.strip().startswith("temperature:") else line for line in text.splitlines()
        ]
        prompt.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("KEFU_WORKSPACE", str(root))
    get_settings.cache_clear()
    code, _, err = run(capsys, "corpus", "validate")
    assert code == 1
    assert "Traceback" not in err
    assert any(all(part in line for part in expected) for line in err.splitlines()), err


def test_a_good_workspace_validates_with_its_version(
    tmp_path: Path, no_overrides: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = workspace_copy(tmp_path / "ws")
    monkeypatch.setenv("KEFU_WORKSPACE", str(root))
    get_settings.cache_clear()
    code, out, _ = run(capsys, "corpus", "validate", "--json")
    assert code == 0
    report = json.loads(out)
    assert report == {"ok": True, "problems": [], "version": load_workspace(root).version}


@pytest.mark.parametrize("how", ["no-prompts-dir", "empty-prompts-dir"])
def test_a_workspace_without_any_prompt_names_the_missing_prompt(tmp_path: Path, how: str) -> None:
    """The LLM backend needs draft.v1 and revise.v1: a workspace without them must not validate
    (else an LLM draft fails at request time with a PromptError instead of being caught here)."""
    root = workspace_copy(tmp_path / "ws")
    shutil.rmtree(root / "prompts")
    if how == "empty-prompts-dir":
        (root / "prompts").mkdir()
    workspace, problems = validate_workspace(root)
    assert any("draft.v1.yaml" in p and "missing" in p for p in problems), problems
    assert workspace is None


def test_init_over_a_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "shop"
    target.write_text("not a directory", encoding="utf-8")
    code, _, err = run(capsys, "init", str(target))
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "internal error" not in err
    assert str(target) in err
    assert target.read_text(encoding="utf-8") == "not a directory"
