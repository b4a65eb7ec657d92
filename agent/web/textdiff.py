"""Character diffs for the pages (an agent's edit, two runs' drafts, two prompt versions) and
grouping of similar questions (the corpus's to-do list)."""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass, field
from typing import Literal

Op = Literal["eq", "ins", "del"]


@dataclass(frozen=True)
class Piece:
    op: Op
    text: str


def char_diff(before: str, after: str) -> list[Piece]:
    """``before`` -> ``after`` as equal, deleted and inserted runs of characters."""
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    pieces: list[Piece] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pieces.append(Piece("eq", before[i1:i2]))
            continue
        if i2 > i1:
            pieces.append(Piece("del", before[i1:i2]))
        if j2 > j1:
            pieces.append(Piece("ins", after[j1:j2]))
    return pieces


def changed_chars(pieces: list[Piece]) -> int:
    return sum(len(p.text) for p in pieces if p.op != "eq")


def line_pairs(before: str, after: str) -> list[tuple[str | None, str | None, list[Piece]]]:
    """Two texts side by side, line by line (a prompt file): (left, right, char diff of the pair)."""
    left, right = before.splitlines(), after.splitlines()
    rows: list[tuple[str | None, str | None, list[Piece]]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, left, right, autojunk=False).get_opcodes():
        if tag == "equal":
            rows.extend((line, line, [Piece("eq", line)]) for line in left[i1:i2])
            continue
        a, b = left[i1:i2], right[j1:j2]
        for n in range(max(len(a), len(b))):
            la = a[n] if n < len(a) else None
            lb = b[n] if n < len(b) else None
            rows.append((la, lb, char_diff(la or "", lb or "")))
    return rows


# --- similar questions -----------------------------------------------------------------------


def _grams(text: str) -> set[str]:
    chars = [c for c in text.lower() if c.isalnum()]
    grams = {a + b for a, b in itertools.pairwise(chars)}
    return grams or set(chars)


def similarity(a: str, b: str) -> float:
    ga, gb = _grams(a), _grams(b)
    return len(ga & gb) / len(ga | gb) if ga and gb else 0.0


@dataclass
class Group:
    """Questions that read alike: the first seen names the group."""

    head: str
    members: list[str] = field(default_factory=list)
    grams: set[str] = field(default_factory=set)

    @property
    def count(self) -> int:
        return len(self.members)

    def distinct(self, limit: int = 10) -> list[str]:
        return list(dict.fromkeys(self.members))[:limit]


def group_similar(texts: list[str], threshold: float = 0.3, max_groups: int = 200) -> list[Group]:
    """Greedy single pass: a text joins the first group whose character bigrams it shares enough of."""
    groups: list[Group] = []
    for text in texts:
        grams = _grams(text)
        if not grams:
            continue
        best, best_score = None, threshold
        for group in groups:
            union = len(grams | group.grams)
            score = len(grams & group.grams) / union if union else 0.0
            if score >= best_score:
                best, best_score = group, score
        if best is None:
            if len(groups) >= max_groups:
                continue
            best = Group(text)
            groups.append(best)
            best.grams = set(grams)
        best.members.append(text)
    return sorted(groups, key=lambda g: (-g.count, g.head))
