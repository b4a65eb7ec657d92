"""``/readyz``: whether this instance can serve, computed at most once per interval.

A result is reused for ``interval_s`` seconds, so anonymous probes in a loop cost one store write
lock and one retrieval per interval, not per call; while one caller computes, the others get the
previous result. The workspace counts as degraded, not down, while its files on disk do not
validate: the last good snapshot still serves.

Anonymous callers get the status alone. Keyed callers also get one line per dependency, with the
workspace's problems (file, script, field) named relative to the workspace: no server paths.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from agent.api.services import Services
from agent.errors import KefuError
from agent.retrieval.service import ping_store

_ABSOLUTE = re.compile(r"(?<![\w.])/(?:[^\s:/'\"]+/)+([^\s:/'\"]+)")


@dataclass(frozen=True)
class Ready:
    """One readiness result: ``ready``, ``degraded`` (serving the last good snapshot) or ``down``."""

    status: str
    checks: dict[str, str]
    at: float

    @property
    def serving(self) -> bool:
        return self.status != "down"


def without_paths(text: str, roots: list[Path]) -> str:
    """``text`` with the given roots cut off the paths in it and any other absolute path shortened."""
    for root in sorted({str(r) for r in roots}, key=len, reverse=True):
        text = text.replace(root.rstrip("/") + "/", "")
    return _ABSOLUTE.sub(r"\1", text)


class Readiness:
    """The cached readiness of ``services``."""

    def __init__(self, services: Services, interval_s: float) -> None:
        self.services = services
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._last: Ready | None = None

    def fresh(self) -> Ready | None:
        """The latest result while it is younger than the interval (no work, no thread)."""
        last = self._last
        return last if last is not None and time.monotonic() - last.at < self.interval_s else None

    def get(self) -> Ready:
        """The latest result, recomputed when older than the interval (by one caller at a time)."""
        last = self._last
        if last is not None and time.monotonic() - last.at < self.interval_s:
            return last
        if not self._lock.acquire(blocking=last is None):
            assert last is not None
            return last
        try:
            self._last = self._compute()
            return self._last
        finally:
            self._lock.release()

    def _roots(self) -> list[Path]:
        settings = self.services.settings
        roots = [settings.data_dir, settings.corpus_dir.parent]  # paths read relative to the workspace
        with contextlib.suppress(KefuError):
            roots.append(self.services.workspace().root)
        return roots

    def _compute(self) -> Ready:
        svc = self.services
        checks = {"workspace": "ok", "index": "ok", "store": "ok"}
        down = False
        holder = svc.holder()
        try:
            svc.workspace()
        except KefuError as exc:
            checks["workspace"], down = f"not loaded: {exc.message}", True
        if not down and holder is not None and holder.problems:
            checks["workspace"] = "degraded (serving the last good snapshot): " + "; ".join(holder.problems[:5])
        if svc.warm_problem is not None and not down:
            svc.warm()
        if svc.warm_problem is not None:
            checks["index"], down = svc.warm_problem, True
        else:
            try:
                ping_store(svc.settings)
            except Exception as exc:  # the index went away (a Chroma server down): not ready
                checks["index"] = f"{exc.code}: {exc.message}" if isinstance(exc, KefuError) else repr(exc)
                down = True
        if not svc.db().writable():
            checks["store"], down = "the store is not writable (see KEFU_DATA_DIR)", True
        roots = self._roots()
        checks = {name: without_paths(state, roots) for name, state in checks.items()}
        degraded = any(state != "ok" for state in checks.values())
        return Ready("down" if down else "degraded" if degraded else "ready", checks, time.monotonic())
