"""Eval runs started from the web: one at a time on a background thread, with progress to poll,
and the runs on disk listed and compared for the pages."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import KefuError

if TYPE_CHECKING:
    from agent.retrieval import Embedder, Retriever

MAX_JOBS = 20


def _headline(entry: Any) -> float | None:
    """A summary entry's headline: its ``value`` (median metrics) when it has one, else its mean."""
    if not isinstance(entry, dict):
        return None
    value = entry.get("value", entry.get("mean"))
    return float(value) if isinstance(value, int | float) else None


@dataclass
class Job:
    job_id: str
    suite: str
    state: str = "queued"  # queued, running, done, failed
    label: str = ""
    done: int = 0
    total: int = 0
    run_ids: list[str] = field(default_factory=list)
    error: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "suite": self.suite,
            "state": self.state,
            "label": self.label,
            "done": self.done,
            "total": self.total,
            "run_ids": self.run_ids,
            "error": self.error,
        }


class _Progress:
    def __init__(self, job: Job) -> None:
        self.job = job

    def start(self, label: str, total: int) -> None:
        self.job.label, self.job.done, self.job.total = label, 0, total

    def advance(self, record: dict[str, Any]) -> None:
        self.job.done += 1


@dataclass
class EvalJobs:
    """The suites a supervisor may start, where runs go, and the jobs started in this process."""

    suites_dir: Path
    runs_dir: Path
    retriever: Retriever | None = None
    embedder: Embedder | None = None
    jobs: dict[str, Job] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def suites(self) -> list[str]:
        return sorted(p.stem for p in self.suites_dir.glob("*.yaml")) if self.suites_dir.is_dir() else []

    def running(self) -> Job | None:
        return next((j for j in self.jobs.values() if j.state in ("queued", "running")), None)

    def start(self, suite: str, limit: int | None = None, backend: str | None = None) -> Job:
        """Start ``suite`` (a name in suites_dir); KefuError-free: problems end up in the job's error."""
        if suite not in self.suites():
            raise LookupError(f"no suite {suite!r} in {self.suites_dir}")
        with self._lock:
            busy = self.running()
            if busy is not None:
                return busy
            job = Job(uuid.uuid4().hex[:12], suite)
            self.jobs[job.job_id] = job
            for old in list(self.jobs)[:-MAX_JOBS]:
                del self.jobs[old]
        thread = threading.Thread(target=self._run, args=(job, limit, backend), name="kefu-web-eval", daemon=True)
        thread.start()
        return job

    def _run(self, job: Job, limit: int | None, backend: str | None) -> None:
        from agent.evaluation.runner import RunOptions, run_suite
        from agent.evaluation.suite import load_suite

        job.state = "running"
        try:
            suite = load_suite(self.suites_dir / f"{job.suite}.yaml")
            options = RunOptions(
                backend=backend,
                limit=limit,
                runs_dir=self.runs_dir,
                retriever=self.retriever,
                embedder=self.embedder,
            )
            runs = run_suite(suite, options, _Progress(job))
        except KefuError as exc:
            job.state, job.error = "failed", f"{exc.code}: {exc.message}"
            return
        except Exception as exc:  # shown on the page; the server goes on
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
            return
        job.run_ids = [r.run_id for r in runs]
        job.state = "done"

    # --- runs on disk ------------------------------------------------------------------------

    def list_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        """Finished runs, newest first: id, suite, backend, prompt version, cases, headline metrics."""
        import json

        if not self.runs_dir.is_dir():
            return []
        out = []
        for path in self.runs_dir.iterdir():
            summary_path = path / "summary.json"
            if not summary_path.is_file():
                continue
            try:
                summary = json.loads(summary_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            metrics = summary.get("metrics") or {}
            out.append(
                {
                    "run_id": summary.get("run_id", path.name),
                    "suite": (summary.get("suite") or {}).get("name", ""),
                    "backend": summary.get("backend", ""),
                    "prompt_version": summary.get("prompt_version"),
                    "started_at": summary.get("started_at", ""),
                    "cases": summary.get("cases", 0),
                    "needs_review": summary.get("needs_review", 0),
                    "headline": {k: _headline(metrics.get(k)) for k in ("rouge_l", "tone", "hit_at_k")},
                }
            )
        out.sort(key=lambda r: (str(r["started_at"]), str(r["run_id"])), reverse=True)
        return out[:limit]
