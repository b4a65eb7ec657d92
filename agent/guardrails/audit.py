"""质检: a supervisor's tone audit of exported chat logs, every agent reply checked on every core.

The log is JSONL or CSV, one turn a line, in the order the turns were said. Each agent turn
is checked with the latest customer turn of the same conversation before it as the query
(none when the customer has not spoken yet). The main process reads and pairs the turns and
hands batches of ``(query, draft)`` to one worker process per core; workers check without
computing fixes (an audit reports, it does not rewrite), so the counts equal those of
checking each reply on its own with :func:`agent.guardrails.check`.
"""

from __future__ import annotations

import csv
import heapq
import json
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from agent.guardrails.engine import evaluate
from agent.guardrails.rules import RuleSet, load_rules

BATCH = 2000
WORST = 50

# (rule, start, end, text) of one finding, as workers return them.
Hit = tuple[str, int, int, str]


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


@dataclass
class Summary:
    """What the audit found, as ``--json`` prints it."""

    lines: int = 0
    replies: int = 0
    customer_turns: int = 0
    skipped: int = 0
    with_findings: int = 0
    refusals: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    by_agent: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

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
            "problems": self.problems[:20],
        }


# --- reading --------------------------------------------------------------------------------


def _rows_jsonl(handle: IO[str]) -> Iterator[tuple[int, dict[str, Any] | None]]:
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            yield number, None
            continue
        yield number, row if isinstance(row, dict) else None


def _rows_csv(handle: IO[str]) -> Iterator[tuple[int, dict[str, Any] | None]]:
    reader = csv.DictReader(handle)
    for row in reader:
        yield reader.line_num, row


def log_format(path: Path, explicit: str | None = None) -> str:
    """``jsonl`` or ``csv``: as asked, else by the file's suffix (JSONL unless it ends in .csv)."""
    if explicit:
        return explicit
    return "csv" if path.suffix.lower() in (".csv", ".tsv") else "jsonl"


def replies(rows: Iterable[tuple[int, dict[str, Any] | None]], fields: Fields, summary: Summary) -> Iterator[Reply]:
    """The agent turns of ``rows``, each with the latest earlier customer turn of its conversation."""
    last_customer: dict[str, str] = {}
    f = fields
    for number, row in rows:
        summary.lines += 1
        if row is None:
            summary.skipped += 1
            _problem(summary, f"line {number}: not a JSON object")
            continue
        text, role = row.get(f.text), row.get(f.role)
        if not isinstance(text, str) or not isinstance(role, str):
            summary.skipped += 1
            _problem(summary, f"line {number}: fields {f.role} and {f.text} must be strings")
            continue
        conversation = str(row.get(f.conversation, ""))
        if role == f.customer_role:
            summary.customer_turns += 1
            last_customer[conversation] = text
        elif role == f.agent_role:
            if not text.strip():
                summary.skipped += 1
                continue
            agent = row.get(f.agent)
            when = row.get(f.time)
            yield Reply(
                number,
                conversation,
                "" if agent is None else str(agent),
                "" if when is None else str(when),
                last_customer.get(conversation),
                text,
            )
        else:
            summary.skipped += 1
            _problem(summary, f"line {number}: role {role!r} is neither {f.customer_role!r} nor {f.agent_role!r}")


def _problem(summary: Summary, message: str) -> None:
    if len(summary.problems) < 20:
        summary.problems.append(message)


# --- checking in workers ----------------------------------------------------------------------

_RULES: RuleSet | None = None


def _init_worker(path: str) -> None:
    global _RULES
    if _RULES is None or str(_RULES.path) != path:
        _RULES = load_rules(Path(path))


def _set_rules(rules: RuleSet | None) -> None:
    global _RULES
    _RULES = rules


def check_batch(batch: list[tuple[str | None, str]]) -> list[tuple[bool, list[Hit]]]:
    """Per ``(query, draft)``: whether it is a refusal, and its findings."""
    rules = _RULES
    assert rules is not None, "worker not initialised"
    out: list[tuple[bool, list[Hit]]] = []
    for query, draft in batch:
        verdict = evaluate(draft, query, None, rules, with_fix=False)
        out.append((verdict.is_refusal, [(f.rule, f.start, f.end, f.text) for f in verdict.findings]))
    return out


def _batches(items: Iterator[Reply], size: int) -> Iterator[list[Reply]]:
    batch: list[Reply] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(order=True)
class Worst:
    """A reply for the report's list of worst examples (most findings first, then earliest line)."""

    key: tuple[int, int]
    reply: Reply = field(compare=False)
    hits: list[Hit] = field(compare=False)


class Auditor:
    """Runs one audit: reading, pairing, parallel checking, tallying, the findings file."""

    def __init__(self, rules: RuleSet, *, workers: int | None = None, worst: int = WORST) -> None:
        self.rules = rules
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.worst_size = worst
        self.summary = Summary()
        self.worst: list[Worst] = []

    def run(
        self,
        rows: Iterable[tuple[int, dict[str, Any] | None]],
        fields: Fields,
        *,
        findings: IO[str] | None = None,
        progress: Callable[[Summary], None] | None = None,
    ) -> Summary:
        items = replies(rows, fields, self.summary)
        batches = _batches(items, BATCH)
        if self.workers == 1:
            _set_rules(self.rules)
            for batch in batches:
                self._tally(batch, check_batch([(r.query, r.text) for r in batch]), findings)
                if progress is not None:
                    progress(self.summary)
            return self.summary
        context = _context()
        _set_rules(self.rules if context.get_start_method() == "fork" else None)  # forked workers inherit it
        with context.Pool(self.workers, initializer=_init_worker, initargs=(str(self.rules.path),)) as pool:
            pairs = (([(r.query, r.text) for r in batch], batch) for batch in batches)
            for batch, results in _ordered(pool, pairs, self.workers * 2):
                self._tally(batch, results, findings)
                if progress is not None:
                    progress(self.summary)
        return self.summary

    def _tally(self, batch: list[Reply], results: list[tuple[bool, list[Hit]]], out: IO[str] | None) -> None:
        s = self.summary
        for reply, (refusal, hits) in zip(batch, results, strict=True):
            s.replies += 1
            agent = s.by_agent.get(reply.agent)
            if agent is None:
                agent = s.by_agent[reply.agent] = {"replies": 0, "with_findings": 0, "by_rule": {}}
            agent["replies"] += 1
            if refusal:
                s.refusals += 1
            if not hits:
                continue
            s.with_findings += 1
            agent["with_findings"] += 1
            by_rule = agent["by_rule"]
            for rule, *_ in hits:
                s.by_rule[rule] += 1
                by_rule[rule] = by_rule.get(rule, 0) + 1
            if out is not None:
                _write_findings(out, reply, hits)
            self._keep_worst(reply, hits)

    def _keep_worst(self, reply: Reply, hits: list[Hit]) -> None:
        entry = Worst((len({h[0] for h in hits}) * 100 + len(hits), -reply.line), reply, hits)
        if len(self.worst) < self.worst_size:
            heapq.heappush(self.worst, entry)
        elif entry > self.worst[0]:
            heapq.heapreplace(self.worst, entry)

    def worst_examples(self) -> list[Worst]:
        return sorted(self.worst, reverse=True)


def _write_findings(out: IO[str], reply: Reply, hits: list[Hit]) -> None:
    for rule, start, end, text in hits:
        record = {
            "line": reply.line,
            "conversation_id": reply.conversation,
            "agent": reply.agent,
            "time": reply.time,
            "rule": rule,
            "start": start,
            "end": end,
            "text": text,
            "reply": reply.text,
            "query": reply.query,
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _ordered(
    pool: Any, pairs: Iterator[tuple[list[tuple[str | None, str]], list[Reply]]], ahead: int
) -> Iterator[tuple[list[Reply], list[tuple[bool, list[Hit]]]]]:
    """Results in input order, keeping at most ``ahead`` batches in flight (bounded memory)."""
    pending: list[tuple[list[Reply], Any]] = []
    for work, batch in pairs:
        pending.append((batch, pool.apply_async(check_batch, (work,))))
        if len(pending) >= ahead:
            done_batch, result = pending.pop(0)
            yield done_batch, result.get()
    for done_batch, result in pending:
        yield done_batch, result.get()


def read_rows(handle: IO[str], fmt: str) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """The rows of an open log in format ``fmt`` (``jsonl`` or ``csv``)."""
    return _rows_csv(handle) if fmt == "csv" else _rows_jsonl(handle)
