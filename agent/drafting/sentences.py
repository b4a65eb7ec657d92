"""Sentences and clauses of a reply: how the composer cuts scripts and joins what it keeps."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from agent.text import normalize_query

_ENDS = "。！？!?~～"
_SENTENCE = re.compile(rf"[^{_ENDS}]+[{_ENDS}]*|[{_ENDS}]+")
_CLAUSE = re.compile(r"[^，,；;：]+[，,；;：]*|[，,；;：]+")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_SEPARATORS = "，,；;：、 "


@lru_cache(maxsize=8192)
def content(text: str) -> str:
    """Letters, digits and CJK of the matching form: what two clauses can share."""
    return _NON_WORD.sub("", normalize_query(text))


def strip_prefix(text: str, prefixes: Sequence[str]) -> str:
    """``text`` without the longest of ``prefixes`` it opens with."""
    for prefix in sorted(prefixes, key=len, reverse=True):
        if prefix and text.startswith(prefix):
            return text[len(prefix) :].lstrip()
    return text


def clauses_of(text: str) -> list[tuple[str, list[str]]]:
    """Per sentence its end mark (``。`` when it has none) and its clauses, separators kept."""
    out: list[tuple[str, list[str]]] = []
    for match in _SENTENCE.finditer(text):
        sentence = match.group(0).strip()
        body = sentence.rstrip(_ENDS)
        end = sentence[len(body) :][:1] or "。"
        clauses = [c.group(0) for c in _CLAUSE.finditer(body) if c.group(0).strip()]
        if clauses:
            out.append((end, clauses))
    return out


@dataclass(frozen=True)
class Piece:
    """A sentence the composer keeps: its clauses (separators kept) and its end mark."""

    clauses: list[str]
    end: str


def assemble(pieces: Sequence[Piece]) -> str:
    parts = []
    for piece in pieces:
        text = "".join(piece.clauses).rstrip(_SEPARATORS)
        if text:
            parts.append(text + piece.end)
    return "".join(parts)
