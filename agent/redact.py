"""Personal data masked with typed placeholders before anything is stored, logged, prompted or drafted.

What counts as personal data is data (``corpus/redaction.yaml``): per kind (phone, ID card, bank
card, e-mail, verification code, password, street address) a placeholder such as 【手机号】 and
regular expressions, with an optional checksum (``luhn``, ``id_card``) and context rules. A
supervisor adds a pattern without a release; ``kefu corpus validate`` compiles them.

Patterns match a *matching form* of the text: invisible and control characters dropped,
full-width forms folded to ASCII (U+FF11 -> 1, U+FF20 -> @), Traditional folded to Simplified
(密碼 -> 密码), spaces kept. Each match is mapped back to the original text and only the value
is replaced (``密码 是 Qwe 789012`` -> ``密码 是 【密码】``): the words around it stay.

A candidate value is kept when nothing in ``unless`` (order and tracking numbers) stands just
before it, and either ``context`` (身份证, 卡号 …) stands just before it, or its checksum holds
and it matches ``bare`` (when given). Overlapping candidates: the earliest, then the longest wins.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.datafile import load
from agent.text import has_traditional, to_simplified

Check = Literal["none", "luhn", "id_card"]

_KEEP = frozenset("\n\t")
_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
# What needs more than Simplified folding: full-width forms, format and control characters.
_UNUSUAL = re.compile(
    "[\uff01-\uff5e\u3000\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff"
    "\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]"
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


class Kind(BaseModel):
    """One kind of personal data: how to find it and what replaces it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    placeholder: str = Field(min_length=1)
    regex: list[re.Pattern[str]] = Field(min_length=1, description="A group named v, when present, is the value.")
    check: Check = "none"
    bare: re.Pattern[str] | None = Field(default=None, description="Without context, the value must match this.")
    context: re.Pattern[str] | None = Field(default=None, description="Searched just before the value.")
    unless: re.Pattern[str] | None = Field(default=None, description="Just before the value: never this kind.")
    window: int = Field(default=12, ge=0, le=64, description="Characters before the value that context sees.")
    trim: re.Pattern[str] | None = Field(default=None, description="Cut from the value's start (lead words).")


@dataclass(frozen=True, slots=True)
class Span:
    """A value found in the ORIGINAL text: ``text[start:end]`` is replaced by ``placeholder``."""

    start: int
    end: int
    kind: str
    placeholder: str


@dataclass(frozen=True, slots=True)
class _Form:
    """The matching form and, per character of it, the index of its source character."""

    text: str
    index: list[int] | None
    original: str

    def span(self, start: int, end: int) -> tuple[int, int]:
        if self.index is None:
            return start, end
        return self.index[start], self.index[end - 1] + 1


def _dropped(ch: str) -> bool:
    if ch in _KEEP:
        return False
    return unicodedata.category(ch) in ("Cc", "Cs", "Cf")


def matching_form(text: str) -> tuple[str, list[int] | None]:
    """``text`` with invisibles dropped, width folded and Simplified; ``None`` index when 1:1."""
    index: list[int] | None = None
    if _UNUSUAL.search(text) is not None:
        kept = [(i, ch) for i, ch in enumerate(text) if not _dropped(ch)]
        if len(kept) != len(text):
            index = [i for i, _ in kept]
        text = "".join(ch for _, ch in kept).translate(_WIDTH)
    if has_traditional(text):
        converted = to_simplified(text)
        text = converted if len(converted) == len(text) else "".join((to_simplified(c) or c)[:1] for c in text)
    return text, index


def luhn(digits: str) -> bool:
    """The Luhn checksum of bank-card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return len(digits) >= 12 and total % 10 == 0


def id_card(value: str) -> bool:
    """An 18-character mainland ID number: a real month and day, and the GB 11643 check character."""
    value = value.upper()
    if len(value) != 18 or not value[:17].isdigit():
        return False
    month, day = int(value[10:12]), int(value[12:14])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17]


def _checked(check: Check, value: str) -> bool:
    if check == "none":
        return True
    compact = "".join(ch for ch in value if ch.isalnum())
    if check == "luhn":
        return compact.isdigit() and luhn(compact)
    return id_card(compact)


class Redactor(BaseModel):
    """The kinds of personal data, in priority order (an earlier kind wins a tie)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patterns: dict[str, Kind]

    def spans(self, text: str) -> list[Span]:
        """Every value found in ``text``, as non-overlapping spans of ``text``, in order."""
        folded, index = matching_form(text)
        form = _Form(folded, index, text)
        found: list[tuple[int, int, int, str]] = []
        for rank, (name, kind) in enumerate(self.patterns.items()):
            for start, end in _candidates(kind, folded):
                found.append((start, -(end - start), rank, name))
        spans: list[Span] = []
        taken = 0
        for start, negative_length, _, name in sorted(found):
            if start < taken:
                continue
            taken = start - negative_length
            first, last = form.span(start, taken)
            spans.append(Span(first, last, name, self.patterns[name].placeholder))
        return spans

    def mask(self, text: str) -> tuple[str, list[str]]:
        """``text`` with every value replaced by its kind's placeholder, and the kinds found (one pass)."""
        if not text:
            return text, []
        spans = self.spans(text)
        parts, pos = [], 0
        for span in spans:
            parts += [text[pos : span.start], span.placeholder]
            pos = span.end
        kinds = sorted({span.kind for span in spans}, key=list(self.patterns).index)
        return "".join(parts) + text[pos:], kinds

    def redact(self, text: str) -> str:
        """``text`` with every value replaced by its kind's placeholder; the rest unchanged."""
        return self.mask(text)[0]

    def found(self, text: str) -> list[str]:
        """The kinds of personal data present in ``text`` (for notes, never the values)."""
        return sorted({span.kind for span in self.spans(text)}, key=list(self.patterns).index)


def _value(match: re.Match[str]) -> tuple[int, int]:
    if "v" in match.re.groupindex and match.group("v") is not None:
        return match.start("v"), match.end("v")
    return match.start(), match.end()


def _candidates(kind: Kind, text: str) -> list[tuple[int, int]]:
    """The spans of ``text`` (matching form) that hold a value of ``kind``."""
    out = []
    for pattern in kind.regex:
        for match in pattern.finditer(text):
            start, end = _value(match)
            if kind.trim is not None:
                cut = kind.trim.match(text, start, end)
                if cut is not None and cut.end() < end:
                    start = cut.end()
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            if start < end and _accepted(kind, text, start, end):
                out.append((start, end))
    return out


_SENTENCE_END = re.compile(r"[。！？!?；;\n]")


def _accepted(kind: Kind, text: str, start: int, end: int) -> bool:
    # Only the value's own sentence describes it: 快递 in "…申通快递。您的手机139…" says nothing of the number.
    before = _SENTENCE_END.split(text[max(0, start - kind.window) : start])[-1]
    if kind.unless is not None and kind.unless.search(before):
        return False
    if kind.context is not None and kind.context.search(before):
        return True
    value = text[start:end]
    if kind.bare is not None and kind.bare.fullmatch(value) is None:
        return False
    return _checked(kind.check, value)


def load_redactor(corpus_dir: Path) -> Redactor:
    """The redactor of ``corpus_dir/redaction.yaml`` (cached until the file changes)."""
    return load(corpus_dir / "redaction.yaml", Redactor)
