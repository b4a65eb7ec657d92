"""WorkspaceHolder: a valid edit swaps in a new snapshot; a broken or empty save keeps the last good
one serving and names the file (and field); the fix swaps again. The watcher thread does it alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.config import LLM_BACKEND, Settings, get_settings
from agent.drafting.base import Proposal
from agent.drafting.fake import ScriptedBackend
from agent.drafting.pipeline import Drafter
from agent.errors import KefuError
from agent.retrieval import Hit
from agent.types import Message
from agent.workspace import Workspace, WorkspaceError, WorkspaceHolder, holder_for, workspace_for
from tests.fakes.corpus import add_tone_word, workspace_copy

SCRIPT = "shipping.default_courier"
ADDED = "感谢您的支持！"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return workspace_copy(tmp_path / "ws")


def scripts_file(root: Path) -> Path:
    return root / "corpus" / "scripts" / "shipping.yaml"


def edit_reply(root: Path, suffix: str) -> None:
    """Append ``suffix`` to the reply of SCRIPT, as a supervisor's save would."""
    path = scripts_file(root)
    text = path.read_text(encoding="utf-8")
    marker = "改发{sf_courier}。\n    tags:"  # the end of the reply (its brief ends the same way)
    assert text.count(marker) == 1
    path.write_text(text.replace(marker, "改发{sf_courier}。" + suffix + "\n    tags:"), encoding="utf-8")


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the watcher did not catch up"
        time.sleep(0.02)


def test_a_valid_edit_swaps_in_a_new_snapshot(root: Path) -> None:
    holder = WorkspaceHolder(root, interval_s=3600)
    first = holder.current()
    assert (holder.problems, holder.degraded) == ([], False)
    assert holder.refresh() is False  # nothing changed on disk
    assert holder.current() is first

    edit_reply(root, ADDED)
    assert holder.refresh() is True
    second = holder.current()
    assert second.version != first.version
    assert second.scripts_by_id[SCRIPT].reply.endswith(ADDED)
    assert not first.scripts_by_id[SCRIPT].reply.endswith(ADDED)  # a held snapshot never changes
    assert holder.problems == []


def test_a_broken_then_empty_save_keeps_the_last_good_snapshot_until_the_fix(root: Path) -> None:
    holder = WorkspaceHolder(root, interval_s=3600)
    good = holder.current()
    path = scripts_file(root)
    saved = path.read_text(encoding="utf-8")

    path.write_text("category: shipping\nscripts: [\n", encoding="utf-8")  # invalid YAML
    assert holder.refresh() is False
    assert holder.current() is good
    assert holder.degraded
    assert any("shipping.yaml" in p and "invalid YAML" in p for p in holder.problems), holder.problems

    path.write_text("", encoding="utf-8")  # caught empty mid-save
    assert holder.refresh() is False
    assert holder.current() is good
    assert any("shipping.yaml" in p and "field" in p for p in holder.problems), holder.problems

    path.write_text(saved.replace("    title: 顾客问默认发什么快递\n", ""), encoding="utf-8")  # a field missing
    assert holder.refresh() is False
    assert holder.current() is good
    named = [p for p in holder.problems if "shipping.yaml" in p and f"script {SCRIPT}" in p and "field title" in p]
    assert named, holder.problems

    path.write_text(saved, encoding="utf-8")
    edit_reply(root, ADDED)  # the fix, with an edit of its own
    assert holder.refresh() is True
    fixed = holder.current()
    assert fixed.version != good.version
    assert fixed.scripts_by_id[SCRIPT].reply.endswith(ADDED)
    assert (holder.problems, holder.degraded) == ([], False)


def test_a_save_that_breaks_a_cross_file_check_is_not_served(root: Path) -> None:
    """Files that parse but do not validate as a whole (a variable no shop defines) never serve."""
    holder = WorkspaceHolder(root, interval_s=3600)
    good = holder.current()
    edit_reply(root, "{no_such_value}")
    assert holder.refresh() is False
    assert holder.current() is good
    assert any(f"script {SCRIPT}" in p and "field reply" in p and "{no_such_value}" in p for p in holder.problems)


def test_restoring_the_last_good_files_clears_the_problems(root: Path) -> None:
    holder = WorkspaceHolder(root, interval_s=3600)
    good = holder.current()
    path = scripts_file(root)
    saved = path.read_text(encoding="utf-8")
    path.write_text("", encoding="utf-8")
    holder.refresh()
    assert holder.degraded
    path.write_text(saved, encoding="utf-8")
    holder.refresh()
    assert not holder.degraded
    assert holder.current().version == good.version


def test_a_workspace_that_never_validated_raises_naming_the_file(root: Path) -> None:
    scripts_file(root).write_text("scripts: {", encoding="utf-8")
    holder = WorkspaceHolder(root, interval_s=0)
    with pytest.raises(WorkspaceError) as err:
        holder.current()
    assert "shipping.yaml" in err.value.message
    assert any("shipping.yaml" in p for p in err.value.problems)
    assert holder.degraded
    scripts_file(root).unlink()
    assert holder.current().scripts_by_id.get(SCRIPT) is None  # without a watcher, current() checks itself


def test_the_watcher_swaps_and_degrades_by_itself_and_stops(root: Path) -> None:
    holder = WorkspaceHolder(root, interval_s=0.02)
    holder.start()
    try:
        watcher = holder._thread
        assert watcher is not None and watcher.is_alive() and watcher.daemon
        holder.start()  # idempotent: still one watcher
        assert holder._thread is watcher
        first = holder.current()

        edit_reply(root, ADDED)
        wait_for(lambda: holder.current().version != first.version)
        second = holder.current()
        assert second.scripts_by_id[SCRIPT].reply.endswith(ADDED)

        path = scripts_file(root)
        saved = path.read_text(encoding="utf-8")
        path.write_text("category: [\n", encoding="utf-8")
        wait_for(lambda: holder.degraded)
        assert holder.current() is second
        assert any("shipping.yaml" in p for p in holder.problems)

        path.write_text(saved.replace(ADDED, "感谢您的耐心！"), encoding="utf-8")
        wait_for(lambda: not holder.degraded)
        assert holder.current().version not in (first.version, second.version)
    finally:
        holder.stop()
    assert not watcher.is_alive()
    assert holder._thread is None


def test_with_a_watcher_current_reads_no_file(root: Path) -> None:
    holder = WorkspaceHolder(root, interval_s=3600)  # the watcher would look again in an hour
    holder.start()
    try:
        first = holder.current()
        edit_reply(root, ADDED)
        assert holder.current() is first  # current() hands out what is held; only the watcher looks
        assert holder.refresh() is True  # an explicit check still works
        assert holder.current() is not first
    finally:
        holder.stop()


def test_readers_always_get_a_whole_valid_snapshot_while_files_flip(root: Path) -> None:
    holder = WorkspaceHolder(root, interval_s=0.005)
    holder.start()
    seen: set[str] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                ws = holder.current()
                assert ws.shop("default").vars["default_courier"]
                seen.add(ws.version)
            except BaseException as exc:
                errors.append(exc)
                return
            # A reader that never lets go of the GIL starves the watcher it waits on (the test
            # then failed under a loaded make test): let it run between reads.
            time.sleep(0.001)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    path = scripts_file(root)
    saved = path.read_text(encoding="utf-8")
    good_versions = {holder.current().version}
    try:
        for i in range(6):
            path.write_text("", encoding="utf-8")
            time.sleep(0.02)
            path.write_text("scripts: [", encoding="utf-8")
            time.sleep(0.02)
            path.write_text(saved.replace("{sf_courier}。\n", f"{{sf_courier}}。第{i}版。\n"), encoding="utf-8")
            # each round's valid text is new, so its snapshot has a version not seen before
            wait_for(lambda: holder.current().version not in good_versions and not holder.degraded, timeout_s=30.0)
            good_versions.add(holder.current().version)
    finally:
        stop.set()
        for t in readers:
            t.join()
        holder.stop()
    assert errors == []
    assert seen <= good_versions
    assert len(good_versions) >= 2


class StaticRetriever:
    """Always the same hit: enough for drafting to get to the backend and the guardrail."""

    def retrieve(self, query: str, k: int) -> list[Hit]:
        return [Hit(SCRIPT, "shipping", 0.9)][:k]


def test_a_drafter_on_a_holder_follows_valid_edits_and_survives_broken_ones(root: Path) -> None:
    text = "亲，本店全场包邮，默认发申通哦。"
    holder = WorkspaceHolder(root, interval_s=3600)
    backend = ScriptedBackend([Proposal(text, False, [SCRIPT])] * 12)
    drafter = Drafter(get_settings(), workspace=holder, retriever_override=StaticRetriever(), llm_override=backend)

    def draft() -> list[str]:
        """The tone rules the draft breaks (the grounding check's findings are not the point here)."""
        found = drafter.draft(Message(text="发什么快递"), backend=LLM_BACKEND).findings
        return [f.rule for f in found if f.rule not in ("unsupported_claim", "uncited_source")]

    assert draft() == []
    tone = root / "corpus" / "tone_rules.yaml"
    saved = tone.read_text(encoding="utf-8")
    tone.write_text("rules: [", encoding="utf-8")
    holder.refresh()
    assert holder.degraded
    assert draft() == []  # the last good snapshot still drafts
    tone.write_text(saved, encoding="utf-8")
    add_tone_word(root / "corpus", "over_intimacy", "全场包邮")
    assert holder.refresh() is True
    assert draft() == ["over_intimacy"]  # the new rule applies from the next draft on


def test_one_holder_per_workspace_in_a_process(root: Path) -> None:
    settings = Settings(corpus_dir=root / "corpus", prompts_dir=root / "prompts")
    holder = holder_for(settings)
    assert holder_for(Settings(corpus_dir=root / "corpus", prompts_dir=root / "prompts")) is holder
    assert isinstance(workspace_for(settings), Workspace)
    assert workspace_for(settings) is holder.current()
    assert holder_for(get_settings()) is not holder


def test_errors_of_the_holder_are_kefu_errors() -> None:
    assert issubclass(WorkspaceError, KefuError)


def test_a_vanished_corpus_directory_keeps_the_last_good_snapshot(root: Path) -> None:
    """A checkout or deploy that moves the directory away for a moment is a problem, never an outage."""
    holder = WorkspaceHolder(root, interval_s=3600)
    good = holder.current()
    (root / "corpus").rename(root / "corpus.moving")
    assert holder.refresh() is False
    assert holder.current() is good
    assert holder.degraded
    assert any("corpus" in p for p in holder.problems), holder.problems
    (root / "corpus.moving").rename(root / "corpus")
    holder.refresh()
    assert not holder.degraded
    assert holder.current().version == good.version


def test_the_configured_workspace_follows_an_edit_without_a_restart(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """agent.check() without a workspace reads the configured one; a saved tone rule applies within the
    holder's interval, with no watcher thread and no restart."""
    import agent

    monkeypatch.setenv("KEFU_WORKSPACE", str(root))
    monkeypatch.delenv("KEFU_CORPUS_DIR")
    get_settings.cache_clear()
    text = "亲，本店全场包邮哦。"
    assert agent.check(text).ok
    before = workspace_for(get_settings()).version
    add_tone_word(root / "corpus", "over_intimacy", "全场包邮")
    wait_for(lambda: workspace_for(get_settings()).version != before)
    assert [f.rule for f in agent.check(text).findings] == ["over_intimacy"]
