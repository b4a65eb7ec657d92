"""The drafting backend registry: a new backend registers without editing core modules, is built per
workspace snapshot, and an unknown name is a clear usage error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import agent.drafting.backends as backends
import agent.drafting.pipeline as pipeline
from agent.cli import main
from agent.config import BACKENDS_DEFAULT, LLM_BACKEND, REPO_ROOT, Settings, get_settings
from agent.drafting.base import Grounding, Proposal
from agent.drafting.composer import ScriptComposer
from agent.drafting.pipeline import Drafter
from agent.errors import ConfigError
from agent.retrieval import Hit
from agent.types import Message
from agent.workspace import Workspace, WorkspaceHolder, load_workspace
from tests.fakes.corpus import workspace_copy


class Echo:
    """A backend of a plug-in: says which shop and workspace version it drafted for."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.name = "echo"

    def draft(self, grounding: Grounding) -> Proposal:
        return Proposal(f"亲，{grounding.shop.vars['shop_name']}收到了。", False)


class StaticRetriever:
    def retrieve(self, query: str, k: int) -> list[Hit]:
        return [Hit("shipping.default_courier", "shipping", 0.9)][:k]


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Echo]]:
    """Register ``echo`` for this test only; the list holds every backend its factory built."""
    made: list[Echo] = []

    def factory(settings: Settings, workspace: Workspace) -> Echo:
        made.append(Echo(workspace))
        return made[-1]

    monkeypatch.setitem(backends._FACTORIES, "echo", factory)
    yield made


def test_the_shipped_backends_are_registered() -> None:
    assert {BACKENDS_DEFAULT, LLM_BACKEND} <= set(backends.backend_names())
    shipped = load_workspace(REPO_ROOT)
    composer = backends.create_backend(BACKENDS_DEFAULT, get_settings(), shipped)
    assert isinstance(composer, ScriptComposer)


def test_a_registered_backend_drafts_and_is_built_once_per_snapshot(built: list[Echo], tmp_path: Path) -> None:
    root = workspace_copy(tmp_path / "ws")
    holder = WorkspaceHolder(root, interval_s=3600)
    drafter = Drafter(get_settings(), workspace=holder, retriever_override=StaticRetriever())
    first = drafter.draft(Message(text="发什么快递"), backend="echo")
    assert (first.backend, first.text) == ("echo", "亲，本店收到了。")
    drafter.draft(Message(text="发什么快递"), backend="echo")
    assert len(built) == 1  # reused while the snapshot is the same
    assert built[0].workspace is holder.current()

    shop = root / "corpus" / "shops" / "default.yaml"
    shop.write_text(shop.read_text(encoding="utf-8").replace("  shop_name: 本店", "  shop_name: 青禾小铺"), "utf-8")
    assert holder.refresh()
    again = drafter.draft(Message(text="发什么快递"), backend="echo")
    assert again.text == "亲，青禾小铺收到了。"
    assert len(built) == 2 and built[1].workspace is holder.current()


def test_an_unknown_backend_names_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match=BACKENDS_DEFAULT):
        backends.create_backend("nope", get_settings(), load_workspace(REPO_ROOT))


def test_the_cli_accepts_a_registered_backend_and_refuses_an_unknown_one(
    built: list[Echo], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "get_retriever", lambda settings, workspace: StaticRetriever())
    monkeypatch.setattr(pipeline, "_drafters", {})  # no Drafter cached by another test
    assert main(["draft", "发什么快递", "--backend", "echo"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "亲，本店收到了。"
    assert "backend=echo" in err
    assert main(["draft", "发什么快递", "--backend", "nope"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "echo" in err and BACKENDS_DEFAULT in err
