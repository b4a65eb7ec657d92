"""One self-contained HTML page for a run, or two runs side by side.

The page holds its CSS and its charts (inline SVG bars, one chart per metric, one bar per group
and run); it makes no request of its own. Every text from a run is HTML-escaped by the template
(customer messages are data); guardrail findings and forbidden phrases are shown as ``<mark>``
over their spans of the draft.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from agent.evaluation.compare import Comparison, compare_runs
from agent.evaluation.runs import Run

TEMPLATES = Path(__file__).with_name("templates")
BAR_W, BAR_GAP, GROUP_GAP, CHART_H, LABEL_H, TOP = 28, 3, 18, 120, 34, 18
HIGHLIGHTED = ("tone", "must_not")


@dataclass(frozen=True)
class Segment:
    text: str
    marks: str = ""


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    run: str
    title: str
    value: str


@dataclass(frozen=True)
class Chart:
    name: str
    description: str
    width: int
    height: int
    bars: list[Bar]
    labels: list[tuple[float, str]]
    baseline: float


def segments(text: str, spans: list[tuple[int, int, str]]) -> list[Segment]:
    """``text`` cut at the spans' edges; each piece carries the names of the spans over it."""
    cuts = {0, len(text)}
    for start, end, _ in spans:
        cuts.update((max(0, min(start, len(text))), max(0, min(end, len(text)))))
    edges = sorted(cuts)
    out = []
    for left, right in itertools.pairwise(edges):
        if left == right:
            continue
        names = sorted({rule for start, end, rule in spans if start <= left and right <= end})
        out.append(Segment(text[left:right], " ".join(names)))
    return out


def _spans(record: dict[str, Any]) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for name in HIGHLIGHTED:
        for start, end, rule in record["metrics"].get(name, {}).get("spans", []):
            spans.append((int(start), int(end), str(rule)))
    return spans


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f} ms" if unit == "ms" else f"{value:.3f}"


def _chart(name: str, runs: list[tuple[str, Run]]) -> Chart:
    first = runs[0][1].summary["metrics"][name]
    unit = str(first.get("unit", ""))
    groups = ["all", *sorted({g for _, run in runs for g in run.summary.get("groups", {})})]

    def value(run: Run, group: str) -> float | None:
        if group == "all":
            v = run.summary["metrics"].get(name, {}).get("mean")
        else:
            v = run.summary.get("groups", {}).get(group, {}).get(name)
        return None if v is None else float(v)

    values = [value(run, g) for g in groups for _, run in runs]
    scale = max([v for v in values if v is not None] + [1e-9]) if unit else 1.0
    bars, labels = [], []
    step = len(runs) * (BAR_W + BAR_GAP) + GROUP_GAP
    for gi, group in enumerate(groups):
        x0 = GROUP_GAP / 2 + gi * step
        labels.append((x0 + len(runs) * (BAR_W + BAR_GAP) / 2, group))
        for ri, (label, run) in enumerate(runs):
            v = value(run, group)
            height = 0.0 if v is None else CHART_H * min(1.0, v / scale)
            x = x0 + ri * (BAR_W + BAR_GAP)
            short = "n/a" if v is None else (f"{v:.0f}" if unit else f"{v:.2f}")
            bars.append(Bar(x, TOP + CHART_H - height, height, label, f"{label} {group}: {_fmt(v, unit)}", short))
    width = int(GROUP_GAP / 2 + len(groups) * step)
    return Chart(name, str(first.get("description", "")), width, TOP + CHART_H + LABEL_H, bars, labels, TOP + CHART_H)


def _run_view(label: str, run: Run) -> dict[str, Any]:
    s = run.summary
    return {
        "label": label,
        "id": run.run_id,
        "backend": s.get("backend"),
        "prompt": s.get("prompt_version") or "-",
        "cases": s.get("cases"),
        "errors": s.get("errors"),
        "needs_review": s.get("needs_review"),
        "fallbacks": s.get("fallbacks"),
        "wall_s": s.get("wall_s"),
        "llm_calls": s.get("llm_calls"),
        "cache_hits": s.get("cache_hits"),
        "model": s.get("model") or "-",
        "git_commit": str(s.get("git_commit", "unknown"))[:12],
        "corpus_hash": str(s.get("corpus_hash", ""))[:12],
        "prompts": s.get("prompts", {}),
        "failures": s.get("threshold_failures", []),
    }


def _draft_view(label: str, record: dict[str, Any] | None, names: list[str], units: dict[str, str]) -> dict[str, Any]:
    if record is None:
        return {"label": label, "missing": True}
    draft = record.get("draft") or {}
    text = str(draft.get("draft", ""))
    metrics = [
        (name, _fmt(record["metrics"][name]["value"], units.get(name, "")), str(record["metrics"][name]["reason"]))
        for name in names
        if name in record["metrics"]
    ]
    return {
        "label": label,
        "missing": False,
        "segments": segments(text, _spans(record)) if text else [],
        "error": record.get("error"),
        "status": draft.get("status", "error"),
        "is_refusal": draft.get("is_refusal"),
        "citations": [c["id"] for c in draft.get("citations", [])],
        "metrics": metrics,
    }


def _metric_rows(runs: list[tuple[str, Run]], comparison: Comparison | None) -> list[dict[str, Any]]:
    deltas = {d.name: d for d in comparison.deltas} if comparison else {}
    rows = []
    for name, entry in runs[0][1].summary["metrics"].items():
        unit = str(entry.get("unit", ""))
        delta = deltas.get(name)
        rows.append(
            {
                "name": name,
                "description": entry.get("description", ""),
                "means": [_fmt(run.summary["metrics"].get(name, {}).get("mean"), unit) for _, run in runs],
                "delta": "" if delta is None or delta.delta is None else f"{delta.delta:+.3f}",
                "regression": bool(delta and delta.regression),
            }
        )
    return rows


def render_report(a: Run, b: Run | None = None) -> str:
    """The HTML page for run ``a`` (and ``b`` beside it, compared against ``a``)."""
    runs = [("A", a)] + ([("B", b)] if b is not None else [])
    comparison = compare_runs(a, b) if b is not None else None
    names = list(a.summary["metrics"])
    units = {n: str(e.get("unit", "")) for n, e in a.summary["metrics"].items()}
    others = b.case_map() if b is not None else {}
    cases = []
    for record in a.cases:
        drafts = [_draft_view("A", record, names, units)]
        if b is not None:
            drafts.append(_draft_view("B", others.get(str(record["id"])), names, units))
        cases.append({"record": record, "drafts": drafts})
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html").render(
        bar_width=BAR_W,
        title=f"kefu eval: {a.run_id}" + (f" vs {b.run_id}" if b is not None else ""),
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        runs=[_run_view(label, run) for label, run in runs],
        metric_rows=_metric_rows(runs, comparison),
        charts=[_chart(name, runs) for name in names],
        comparison=comparison,
        cases=cases,
    )


def write_report(path: Path, a: Run, b: Run | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(a, b), encoding="utf-8")
    return path
