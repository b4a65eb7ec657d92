"""The HTML page of a tone audit: totals, findings per rule and per agent, the worst replies
with every finding's span highlighted in the text the agent sent."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

from agent.guardrails.audit import Hit, Summary, Worst

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def segments(text: str, hits: list[Hit]) -> list[dict[str, Any]]:
    """``text`` cut at every finding boundary; each piece with the rules whose spans cover it."""
    cuts = sorted({0, len(text), *(h[1] for h in hits), *(h[2] for h in hits)})
    pieces = []
    for start, end in pairwise(cuts):
        if start >= end:
            continue
        rules = sorted({h[0] for h in hits if h[1] <= start and end <= h[2]})
        pieces.append({"text": text[start:end], "rules": rules})
    return pieces


def render(summary: Summary, worst: list[Worst], *, source: str, seconds: float) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape  # only an HTML report needs it

    env = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=select_autoescape(["html"]))
    examples = [
        {
            "line": w.reply.line,
            "conversation": w.reply.conversation,
            "agent": w.reply.agent,
            "time": w.reply.time,
            "query": w.reply.query,
            "pieces": segments(w.reply.text, w.hits),
            "rules": sorted({h[0] for h in w.hits}),
            "findings": [{"rule": h[0], "start": h[1], "end": h[2], "text": h[3]} for h in w.hits],
        }
        for w in worst
    ]
    agents = sorted(
        summary.by_agent.items(), key=lambda kv: (-kv[1]["with_findings"] / max(1, kv[1]["replies"]), kv[0])
    )
    return env.get_template("audit_report.html").render(
        summary=summary.as_json(), agents=agents, examples=examples, source=source, seconds=seconds
    )


def write(path: Path, summary: Summary, worst: list[Worst], *, source: str, seconds: float) -> None:
    path.write_text(render(summary, worst, source=source, seconds=seconds), encoding="utf-8")
