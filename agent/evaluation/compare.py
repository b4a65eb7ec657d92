"""Compare two runs: per-metric deltas, regressions beyond the suite's limits, the cases that got worse.

Run A is the reference, run B the candidate. A metric regresses when B is worse than A by more
than its ``max_regression`` (from B's suite, else A's); metrics without one are reported, not
gated. A case got worse when any quality metric (not latency) dropped between A and B.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.evaluation.runs import Run
from agent.evaluation.summary import headline

EPSILON = 1e-9


@dataclass(frozen=True)
class MetricDelta:
    name: str
    a: float | None
    b: float | None
    higher_is_better: bool
    unit: str
    limit: float | None
    regression: bool

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass(frozen=True)
class CaseChange:
    """One case where a metric dropped from A to B, with B's reason."""

    case_id: str
    metric: str
    a: float
    b: float
    reason: str


@dataclass(frozen=True)
class Comparison:
    run_a: str
    run_b: str
    deltas: list[MetricDelta]
    worse: list[CaseChange]
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.regression]

    def worse_cases(self) -> list[str]:
        return list(dict.fromkeys(c.case_id for c in self.worse))


def _limits(a: Run, b: Run) -> dict[str, dict[str, Any]]:
    limits: dict[str, dict[str, Any]] = dict(a.summary.get("thresholds") or {})
    limits.update(b.summary.get("thresholds") or {})
    return limits


def _delta(name: str, a: Run, b: Run, limits: dict[str, dict[str, Any]]) -> MetricDelta:
    entry_a = a.summary["metrics"].get(name, {})
    entry_b = b.summary["metrics"].get(name, {})
    higher = bool(entry_b.get("higher_is_better", entry_a.get("higher_is_better", True)))
    mean_a, mean_b = headline(entry_a), headline(entry_b)
    limit = limits.get(name, {}).get("max_regression")
    regression = False
    if limit is not None and mean_a is not None and mean_b is not None:
        worse_by = (mean_a - mean_b) if higher else (mean_b - mean_a)
        regression = worse_by > limit + EPSILON
    return MetricDelta(name, mean_a, mean_b, higher, str(entry_b.get("unit", "")), limit, regression)


def _case_changes(a: Run, b: Run, names: list[str]) -> list[CaseChange]:
    quality = [n for n in names if not a.summary["metrics"].get(n, {}).get("unit")]
    cases_a = a.case_map()
    changes: list[CaseChange] = []
    for case_b in b.cases:
        case_a = cases_a.get(str(case_b["id"]))
        if case_a is None:
            continue
        for name in quality:
            va = case_a["metrics"].get(name, {}).get("value")
            vb = case_b["metrics"].get(name, {}).get("value")
            if va is not None and vb is not None and vb < va - EPSILON:
                reason = str(case_b["metrics"][name].get("reason", ""))
                changes.append(CaseChange(str(case_b["id"]), name, float(va), float(vb), reason))
    changes.sort(key=lambda c: c.b - c.a)
    return changes


def compare_runs(a: Run, b: Run) -> Comparison:
    names = [n for n in a.summary["metrics"] if n in b.summary["metrics"]]
    limits = _limits(a, b)
    notes = []
    if a.summary.get("dataset", {}).get("sha256") != b.summary.get("dataset", {}).get("sha256"):
        notes.append("the runs used different datasets: only cases with the same id are compared")
    if a.summary.get("cases") != b.summary.get("cases"):
        notes.append(f"run A has {a.summary.get('cases')} cases, run B {b.summary.get('cases')}")
    deltas = [_delta(name, a, b, limits) for name in names]
    return Comparison(a.run_id, b.run_id, deltas, _case_changes(a, b, names), notes)


# --- the committed baseline the CI gate holds a run to -------------------------------------

BASELINE_TOLERANCE = 1e-5  # float noise only: float32 embeddings differ in the last bits between CPUs


def baseline_from(run: Run) -> dict[str, Any]:
    """The baseline a run sets: its quality means (latency is left out: it measures the machine)."""
    s = run.summary
    return {
        "suite": s.get("suite", {}).get("name"),
        "run_id": run.run_id,
        "git_commit": s.get("git_commit"),
        "corpus_hash": s.get("corpus_hash"),
        "dataset_sha256": s.get("dataset", {}).get("sha256"),
        "cases": s.get("cases"),
        "packages": s.get("packages"),
        "metrics": {
            name: headline(entry)
            for name, entry in s["metrics"].items()
            if entry.get("higher_is_better", True) and not entry.get("unit") and headline(entry) is not None
        },
        # Lower-is-better quality metrics (repeated facts, fragments, length, needs_review): ceilings.
        "ceilings": {
            name: headline(entry)
            for name, entry in s["metrics"].items()
            if not entry.get("higher_is_better", True) and not entry.get("unit") and headline(entry) is not None
        },
    }


def below_baseline(run: Run, baseline: dict[str, Any], tolerance: float = BASELINE_TOLERANCE) -> list[str]:
    """One line per way the run falls short of the baseline (empty when it holds)."""
    problems = []
    if baseline.get("dataset_sha256") != run.summary.get("dataset", {}).get("sha256"):
        problems.append("the golden set changed since the baseline was recorded: re-record it (kefu eval baseline)")
    for name, ceiling in baseline.get("ceilings", {}).items():
        value = headline(run.summary["metrics"].get(name, {}))
        if value is None:
            problems.append(f"{name}: not measured by this run (baseline ceiling {ceiling:.6f})")
        elif value > ceiling + tolerance:
            problems.append(f"{name}: {value:.6f} is above the baseline {ceiling:.6f}")
    for name, floor in baseline.get("metrics", {}).items():
        mean = headline(run.summary["metrics"].get(name, {}))
        if mean is None:
            problems.append(f"{name}: not measured by this run (baseline {floor:.6f})")
        elif mean < floor - tolerance:
            problems.append(f"{name}: {mean:.6f} is below the baseline {floor:.6f}")
    drift = package_drift(baseline.get("packages"), run.summary.get("packages"))
    if problems and drift:
        problems.append("installed libraries differ from the baseline's: " + ", ".join(drift))
    return problems


def package_drift(recorded: dict[str, str | None] | None, now: dict[str, str | None] | None) -> list[str]:
    """``name old -> new`` for each library whose version differs (nothing when either side is unknown)."""
    if not recorded or not now:
        return []
    return [
        f"{name} {recorded.get(name)} -> {now.get(name)}"
        for name in sorted(set(recorded) | set(now))
        if recorded.get(name) != now.get(name)
    ]
