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

import heapq
import json
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from agent.guardrails.audit_log import (
    Fields,
    Hit,
    Reply,
    Row,
    Summary,
    Worst,
    log_format,
    ranges,
    read_rows,
    replies,
    rows_jsonl,
)
from agent.guardrails.engine import spans
from agent.guardrails.rules import RuleSet, load_rules

CHUNK_BYTES = 4 << 20
BATCH = 2000
WORST = 50

__all__ = ["Auditor", "Fields", "Hit", "Reply", "Row", "Summary", "Worst", "log_format", "read_rows"]


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
    for reply in replies(rows_jsonl(lines), fields, part.summary, part.last_customer, part.pending):
        part.record(reply, *check_one(rules, reply.query, reply.text), keep_findings, worst)
    return part


def check_batch(batch: list[tuple[str | None, str]]) -> list[tuple[bool, list[Hit]]]:
    """Per ``(query, draft)``: whether it is a refusal, and its findings (in a worker)."""
    rules = _RULES
    assert rules is not None, "worker not initialised"
    return [check_one(rules, query, draft) for query, draft in batch]


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
