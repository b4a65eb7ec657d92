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


def bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def overlap(key: str, said: list[str]) -> float:
    """The share of ``key``'s character pairs that earlier clauses already said."""
    pairs = bigrams(key)
    if len(pairs) < 4 or not said:  # a short clause (好的, 可以的) is no fact of its own
        return 0.0
    return len(pairs & bigrams("|".join(said))) / len(pairs)


def says_again(key: str, said: list[str], min_run: int) -> bool:
    """Whether ``key`` (a clause's content) repeats a run of ``min_run`` characters already said."""
    if any(key in s or (len(s) >= min_run and s in key) for s in said):
        return True
    run = min(min_run, len(key))
    if run < min_run:
        return False
    return any(key[i : i + run] in s for s in said for i in range(len(key) - run + 1))
