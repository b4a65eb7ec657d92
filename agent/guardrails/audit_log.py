"""The chat log an audit reads: its fields, its rows (JSONL or CSV), agent turns paired with the
customer turn before them, and the tallies (:class:`Summary`) that the audit adds up."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import IO, Any

MAX_PROBLEMS = 20

Hit = tuple[str, int, int, str]  # rule, start, end, text of one finding
Row = tuple[int, dict[str, Any] | None]  # line number, parsed object (None: not an object)


@dataclass(frozen=True)
class Fields:
    """Column names of the log and the role values that mark customer and agent turns."""

    conversation: str = "conversation_id"
    agent: str = "agent"
    time: str = "time"
    role: str = "role"
    text: str = "text"
    customer_role: str = "customer"
    agent_role: str = "agent"


@dataclass
class Reply:
    """An agent turn to check, with where it came from."""

    line: int
    conversation: str
    agent: str
    time: str
    query: str | None
    text: str


@dataclass(order=True)
class Worst:
    """A reply for the report's list of worst examples (most rules, most findings, earliest line)."""

    key: tuple[int, int]
    reply: Reply = field(compare=False)
    hits: list[Hit] = field(compare=False)


@dataclass
class Summary:
    """What the audit found, as ``--json`` prints it (mergeable: one per range, then added up)."""

    lines: int = 0
    replies: int = 0
    customer_turns: int = 0
    skipped: int = 0
    with_findings: int = 0
    refusals: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    by_agent: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)

    def add(self, reply: Reply, refusal: bool, hits: list[Hit]) -> None:
        self.replies += 1
        agent = self.by_agent.get(reply.agent)
        if agent is None:
            agent = self.by_agent[reply.agent] = {"replies": 0, "with_findings": 0, "by_rule": {}}
        agent["replies"] += 1
        self.refusals += refusal
        if hits:
            self.with_findings += 1
            agent["with_findings"] += 1
            by_rule = agent["by_rule"]
            for hit in hits:
                self.by_rule[hit[0]] += 1
                by_rule[hit[0]] = by_rule.get(hit[0], 0) + 1

    def merge(self, other: Summary, line_offset: int) -> None:
        self.lines += other.lines
        self.replies += other.replies
        self.customer_turns += other.customer_turns
        self.skipped += other.skipped
        self.with_findings += other.with_findings
        self.refusals += other.refusals
        self.by_rule.update(other.by_rule)
        for name, theirs in other.by_agent.items():
            mine = self.by_agent.setdefault(name, {"replies": 0, "with_findings": 0, "by_rule": {}})
            mine["replies"] += theirs["replies"]
            mine["with_findings"] += theirs["with_findings"]
            for rule, n in theirs["by_rule"].items():
                mine["by_rule"][rule] = mine["by_rule"].get(rule, 0) + n
        for line, reason in other.problems:
            self.problem(line + line_offset, reason)

    def problem(self, line: int, reason: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((line, reason))

    def as_json(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "replies": self.replies,
            "customer_turns": self.customer_turns,
            "skipped": self.skipped,
            "with_findings": self.with_findings,
            "refusals": self.refusals,
            "by_rule": dict(sorted(self.by_rule.items())),
            "by_agent": {name: self.by_agent[name] for name in sorted(self.by_agent)},
            "problems": [f"line {line}: {reason}" for line, reason in self.problems],
        }


# --- reading and pairing --------------------------------------------------------------------


def rows_jsonl(lines: Iterable[str]) -> Iterator[Row]:
    loads = json.loads
    for number, line in enumerate(lines, 1):
        if not line or line.isspace():
            continue
        try:
            row = loads(line)
        except ValueError:
            yield number, None
            continue
        yield number, row if isinstance(row, dict) else None


def _rows_csv(handle: IO[str]) -> Iterator[Row]:
    reader = csv.DictReader(handle)
    for row in reader:
        yield reader.line_num, row


def read_rows(handle: IO[str], fmt: str) -> Iterator[Row]:
    """The rows of an open log in format ``fmt`` (``jsonl`` or ``csv``)."""
    return _rows_csv(handle) if fmt == "csv" else rows_jsonl(handle)


def log_format(path: Path, explicit: str | None = None) -> str:
    """``jsonl`` or ``csv``: as asked, else by the file's suffix (JSONL unless it ends in .csv)."""
    if explicit:
        return explicit
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def replies(
    rows: Iterable[Row], fields: Fields, summary: Summary, last_customer: dict[str, str], pending: list[Reply] | None
) -> Iterator[Reply]:
    """The agent turns of ``rows``, each with the latest earlier customer turn of its conversation.

    With ``pending``, an agent turn whose conversation has no customer turn in ``last_customer``
    goes there instead (its query comes from before these rows).
    """
    f = fields
    for number, row in rows:
        summary.lines += 1
        if row is None:
            summary.skipped += 1
            summary.problem(number, "not a JSON object")
            continue
        text, role = row.get(f.text), row.get(f.role)
        if not isinstance(text, str) or not isinstance(role, str):
            summary.skipped += 1
            summary.problem(number, f"fields {f.role} and {f.text} must be strings")
            continue
        conversation = str(row.get(f.conversation, ""))
        if role == f.customer_role:
            summary.customer_turns += 1
            last_customer[conversation] = text
        elif role == f.agent_role:
            if not text.strip():
                summary.skipped += 1
                continue
            agent, when = row.get(f.agent), row.get(f.time)
            query = last_customer.get(conversation)
            reply = Reply(number, conversation, "" if agent is None else str(agent), "" if when is None else str(when),
                          query, text)  # fmt: skip
            if query is None and pending is not None:
                pending.append(reply)
            else:
                yield reply
        else:
            summary.skipped += 1
            summary.problem(number, f"role {role!r} is neither {f.customer_role!r} nor {f.agent_role!r}")


def ranges(path: Path, size: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``size`` bytes that start and end at line boundaries."""
    total = path.stat().st_size
    cuts = [0]
    with open(path, "rb") as handle:
        while cuts[-1] + size < total:
            handle.seek(cuts[-1] + size)
            handle.readline()
            cut = handle.tell()
            if cut >= total:
                break
            cuts.append(cut)
    cuts.append(total)
    return [(a, b) for a, b in pairwise(cuts) if b > a]
