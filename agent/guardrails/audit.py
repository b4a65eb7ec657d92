"""质检: a supervisor's tone audit of exported chat logs, every agent reply checked on every core.

The log is JSONL or CSV, one turn a line, in the order the turns were said. Each agent turn is
checked with the latest customer turn of the same conversation before it as the query (none
when the customer has not spoken yet), without computing fixes (an audit reports, it does not
rewrite), so the counts equal those of checking each reply on its own with
:func:`agent.guardrails.check`.

JSONL is cut into byte ranges at line ends; each worker process reads, parses, pairs and checks
its own range. An agent turn whose conversation has no customer turn earlier in the same range
comes back unchecked ("pending"), with the range's last customer turn per conversation; the main
process, taking the ranges in order, checks those with the customer turn that came before the
range. CSV (whose quoted fields may hold newlines) is read and paired in the main process and
checked in batches by the workers.
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
from itertools import pairwise
from pathlib import Path
from typing import IO, Any

from agent.guardrails.engine import spans
from agent.guardrails.rules import RuleSet, load_rules

CHUNK_BYTES = 4 << 20
BATCH = 2000
WORST = 50
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


def _rows_jsonl(lines: Iterable[str]) -> Iterator[Row]:
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
    return _rows_csv(handle) if fmt == "csv" else _rows_jsonl(handle)


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


# --- the work of one process ------------------------------------------------------------------

_RULES: RuleSet | None = None


def _set_rules(rules: RuleSet | None) -> None:
    global _RULES
    _RULES = rules


def _init_worker(path: str) -> None:
    if _RULES is None or str(_RULES.path) != path:
        _set_rules(load_rules(Path(path)))


def check_one(rules: RuleSet, query: str | None, draft: str) -> tuple[bool, list[Hit]]:
    return spans(draft, query, rules)


@dataclass
class Part:
    """The outcome of one range or batch: tallies, findings and worst replies, lines counted locally."""

    summary: Summary = field(default_factory=Summary)
    findings: list[tuple[Reply, list[Hit]]] = field(default_factory=list)
    worst: list[Worst] = field(default_factory=list)
    pending: list[Reply] = field(default_factory=list)
    last_customer: dict[str, str] = field(default_factory=dict)
    raw_lines: int = 0

    def record(self, reply: Reply, refusal: bool, hits: list[Hit], keep_findings: bool, worst: int) -> None:
        self.summary.add(reply, refusal, hits)
        if not hits:
            return
        if keep_findings:
            self.findings.append((reply, hits))
        entry = Worst((len({h[0] for h in hits}) * 100 + len(hits), -reply.line), reply, hits)
        if len(self.worst) < worst:
            heapq.heappush(self.worst, entry)
        elif entry > self.worst[0]:
            heapq.heapreplace(self.worst, entry)


def audit_range(task: tuple[str, int, int, Fields, bool, int]) -> Part:
    """Read, parse, pair and check the lines of one byte range of a JSONL log (in a worker)."""
    path, start, end, fields, keep_findings, worst = task
    rules = _RULES
    assert rules is not None, "worker not initialised"
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    text = data.decode("utf-8-sig" if start == 0 else "utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    part = Part(raw_lines=len(lines))
    for reply in replies(_rows_jsonl(lines), fields, part.summary, part.last_customer, part.pending):
        part.record(reply, *check_one(rules, reply.query, reply.text), keep_findings, worst)
    return part


def check_batch(batch: list[tuple[str | None, str]]) -> list[tuple[bool, list[Hit]]]:
    """Per ``(query, draft)``: whether it is a refusal, and its findings (in a worker)."""
    rules = _RULES
    assert rules is not None, "worker not initialised"
    return [check_one(rules, query, draft) for query, draft in batch]


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


# --- the audit ------------------------------------------------------------------------------------


class Auditor:
    """Runs one audit: the ranges or batches on every core, tallied in order in this process."""

    def __init__(
        self, rules: RuleSet, *, workers: int | None = None, worst: int = WORST, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        self.rules = rules
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.worst_size = worst
        self.chunk_bytes = chunk_bytes
        self.summary = Summary()
        self.worst: list[Worst] = []
        self.last_customer: dict[str, str] = {}
        self.lines_before = 0

    def run_jsonl(
        self,
        path: Path,
        fields: Fields,
        *,
        findings: IO[str] | None = None,
        progress: Callable[[Summary, float], None] | None = None,
    ) -> Summary:
        spans = ranges(path, self.chunk_bytes)
        total = spans[-1][1] if spans else 0
        tasks = [(str(path), a, b, fields, findings is not None, self.worst_size) for a, b in spans]
        with self._pool() as pool:
            results = pool.imap(audit_range, tasks) if pool is not None else map(audit_range, tasks)
            for (_, end), part in zip(spans, results, strict=True):
                self._merge(part, findings)
                if progress is not None:
                    progress(self.summary, end / total if total else 1.0)
        return self.summary

    def run_rows(
        self,
        rows: Iterable[Row],
        fields: Fields,
        *,
        findings: IO[str] | None = None,
        progress: Callable[[Summary, float], None] | None = None,
    ) -> Summary:
        """Rows read here (CSV), paired here, checked in batches by the workers."""
        items = replies(rows, fields, self.summary, self.last_customer, None)
        batches = _batches(items, BATCH)
        with self._pool() as pool:
            for batch, results in _ordered(pool, batches, self.workers * 2):
                part = Part()
                for reply, (refusal, hits) in zip(batch, results, strict=True):
                    part.record(reply, refusal, hits, findings is not None, self.worst_size)
                lines = self.summary.lines
                self._merge(part, findings)
                self.summary.lines = lines  # counted while reading
                if progress is not None:
                    progress(self.summary, -1.0)
        return self.summary

    def _merge(self, part: Part, findings: IO[str] | None) -> None:
        offset = self.lines_before
        if offset:  # local line numbers of a range become the file's, once per reply
            moved: set[int] = set()
            for reply in [*part.pending, *(r for r, _ in part.findings), *(w.reply for w in part.worst)]:
                if id(reply) not in moved:
                    moved.add(id(reply))
                    reply.line += offset
            for entry in part.worst:
                entry.key = (entry.key[0], -entry.reply.line)
        for reply in part.pending:  # agent turns whose customer turn came before this range
            reply.query = self.last_customer.get(reply.conversation)
            part.record(reply, *check_one(self.rules, reply.query, reply.text), findings is not None, self.worst_size)
        self.last_customer.update(part.last_customer)
        self.summary.merge(part.summary, offset)
        for entry in part.worst:
            if len(self.worst) < self.worst_size:
                heapq.heappush(self.worst, entry)
            elif entry > self.worst[0]:
                heapq.heapreplace(self.worst, entry)
        if findings is not None:
            for reply, hits in sorted(part.findings, key=lambda f: f[0].line):
                _write_findings(findings, reply, hits)
        self.lines_before += part.raw_lines

    def _pool(self) -> Any:
        if self.workers == 1:
            _set_rules(self.rules)
            return _NoPool()
        context = _context()
        _set_rules(self.rules if context.get_start_method() == "fork" else None)  # forked workers inherit it
        return context.Pool(self.workers, initializer=_init_worker, initargs=(str(self.rules.path),))

    def worst_examples(self) -> list[Worst]:
        return sorted(self.worst, reverse=True)


class _NoPool:
    """One process: the same code path without workers."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


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


def _batches(items: Iterator[Reply], size: int) -> Iterator[list[Reply]]:
    batch: list[Reply] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _ordered(
    pool: Any, batches: Iterator[list[Reply]], ahead: int
) -> Iterator[tuple[list[Reply], list[tuple[bool, list[Hit]]]]]:
    """Results in input order, keeping at most ``ahead`` batches in flight (bounded memory)."""
    if pool is None:
        for batch in batches:
            yield batch, check_batch([(r.query, r.text) for r in batch])
        return
    pending: list[tuple[list[Reply], Any]] = []
    for batch in batches:
        pending.append((batch, pool.apply_async(check_batch, ([(r.query, r.text) for r in batch],))))
        if len(pending) >= ahead:
            done, result = pending.pop(0)
            yield done, result.get()
    for done, result in pending:
        yield done, result.get()
