"""A run's summary: per metric its mean (or median), per group the means, and failed thresholds."""

from __future__ import annotations

import statistics
from typing import Any

from agent.evaluation.metrics import METRICS
from agent.evaluation.suite import Suite


def headline(entry: dict[str, Any]) -> float | None:
    """A summary entry's value: its median for median metrics (length_ratio), else its mean."""
    value = entry.get("value", entry.get("mean"))
    return None if value is None else float(value)


def _values(records: list[dict[str, Any]], name: str) -> list[float]:
    return [float(v) for r in records if (v := r["metrics"].get(name, {}).get("value")) is not None]


def metric_summary(records: list[dict[str, Any]], names: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        values = _values(records, name)
        metric = METRICS[name]
        entry: dict[str, Any] = {
            "mean": round(statistics.fmean(values), 6) if values else None,
            "n": len(values),
            "higher_is_better": metric.higher_is_better,
            "unit": metric.unit,
            "description": metric.description,
        }
        if values:
            entry["median"] = round(statistics.median(values), 6)
        entry["value"] = entry["median"] if metric.aggregate == "median" and values else entry["mean"]
        if metric.unit == "ms" and values:
            ordered = sorted(values)
            entry["p50"] = round(ordered[len(ordered) // 2], 3)
            entry["p95"] = round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 3)
        out[name] = entry
    return out


def group_summary(records: list[dict[str, Any]], names: list[str]) -> dict[str, dict[str, float | None]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(str(record["group"]), []).append(record)
    return {
        group: {name: (round(statistics.fmean(v), 6) if (v := _values(rows, name)) else None) for name in names}
        for group, rows in sorted(groups.items())
    }


def threshold_failures(suite: Suite, metrics: dict[str, dict[str, Any]]) -> list[str]:
    failures = []
    for name, limit in suite.thresholds.items():
        mean = headline(metrics.get(name, {}))
        if mean is None:
            continue
        if limit.min is not None and mean < limit.min:
            failures.append(f"{name} {mean:.4f} is below the suite's min {limit.min:g}")
        if limit.max is not None and mean > limit.max:
            failures.append(f"{name} {mean:.4f} is above the suite's max {limit.max:g}")
    return failures
