"""The last good snapshot of a workspace, swapped atomically when the files change and validate.

``current()`` never reads a file while a snapshot is held: a caller either gets the old snapshot
or the new one, whole. A change on disk is noticed by its stamp (path, mtime, size of each file):
by the background watcher (``start()``, what the API runs), or, without one, by a throttled check
in ``current()``. A change that does not validate leaves the last good snapshot serving and its
problems in ``problems`` until a later save fixes them.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from agent.config import Settings
from agent.errors import KefuError
from agent.workspace.load import WorkspaceError, stamp
from agent.workspace.snapshot import Workspace
from agent.workspace.validated import validate_workspace


class WorkspaceHolder:
    def __init__(self, source: Path | Settings, interval_s: float = 1.0) -> None:
        self._source = source
        if isinstance(source, Settings):
            self._dirs = (source.corpus_dir, source.prompts_dir)
        else:
            self._dirs = (source / "corpus", source / "prompts")
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._current: Workspace | None = None
        self._problems: list[str] = []
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self._checked = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.swaps = 0

    @property
    def problems(self) -> list[str]:
        """What is wrong with the files on disk now (empty when they validate)."""
        return list(self._problems)

    @property
    def degraded(self) -> bool:
        return bool(self._problems)

    def current(self) -> Workspace:
        """The snapshot to use for one request; raises WorkspaceError only if none ever validated."""
        held = self._current
        if self._thread is None and (held is None or time.monotonic() - self._checked >= self.interval_s):
            self.refresh()
            held = self._current
        if held is None:
            problems = self._problems or ["workspace did not load"]
            raise WorkspaceError(problems[0], problems)
        return held

    def refresh(self) -> bool:
        """Check the files now; swap in a new snapshot when they changed and validate. True on a swap."""
        with self._lock:
            self._checked = time.monotonic()
            now = stamp(self._dirs)
            if now == self._stamp and (self._current is not None or self._problems):
                return False
            try:
                workspace, problems = validate_workspace(self._source)
            except KefuError as exc:  # anything a broken file can raise is reported, never thrown
                workspace, problems = None, [exc.message]
            except Exception as exc:
                workspace, problems = None, [f"{self._dirs[0]}: could not load: {type(exc).__name__}: {exc}"]
            self._stamp = now
            self._problems = problems
            if workspace is None:
                return False
            swapped = self._current is None or workspace.version != self._current.version
            self._current = workspace
            if swapped:
                self.swaps += 1
            return swapped

    def start(self) -> None:
        """Watch the files in a daemon thread (idempotent)."""
        if self._thread is not None:
            return
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="kefu-workspace-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.refresh()


_HOLDERS: dict[tuple[str, str], WorkspaceHolder] = {}
_HOLDERS_LOCK = threading.Lock()


def holder_for(settings: Settings) -> WorkspaceHolder:
    """One holder per workspace directories in this process."""
    key = (str(settings.corpus_dir), str(settings.prompts_dir))
    with _HOLDERS_LOCK:
        holder = _HOLDERS.get(key)
        if holder is None:
            holder = _HOLDERS[key] = WorkspaceHolder(settings, interval_s=0.5)
    return holder


def workspace_for(settings: Settings) -> Workspace:
    """The current snapshot of the configured workspace (a throttled stamp check, no reads)."""
    return holder_for(settings).current()
