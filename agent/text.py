"""Text hygiene shared by retrieval, drafting and the guardrail.

Two different jobs live here:

* :func:`sanitize` cleans what a customer pasted (control characters, lone surrogates,
  zero-width and bidi marks) and keeps everything a person would see.
* :func:`normalize` builds a form for *matching only* (Traditional to Simplified, full-width
  to half-width, invisible and spacing characters dropped, long runs collapsed) together with
  an index back into the original, so a match in the normalised text points at the span the
  person wrote.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from opencc import OpenCC

_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u180e\u00ad"
_BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"
_INVISIBLE = frozenset(_ZERO_WIDTH + _BIDI)
_KEEP_CONTROLS = frozenset("\n\t")
_SENTENCE_END = re.compile(r"[^。！？!?；;\n]*(?:[。！？!?；;\n]+|$)")


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    return str(_t2s().convert(text))


def _dropped(ch: str) -> bool:
    if ch in _INVISIBLE:
        return True
    if ch in _KEEP_CONTROLS:
        return False
    cat = unicodedata.category(ch)
    return cat in ("Cc", "Cs") or (cat == "Cf" and ch not in "\u200d")


def sanitize(text: str) -> str:
    """Remove control characters, lone surrogates, zero-width and bidi marks; keep the rest."""
    return "".join(ch for ch in text if not _dropped(ch) and ch not in _INVISIBLE).strip()


def fold_width(ch: str) -> str:
    """Full-width ASCII and the ideographic space to their half-width forms."""
    code = ord(ch)
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - 0xFEE0)
    if code == 0x3000:
        return " "
    return ch


@dataclass(frozen=True, slots=True)
class Normalized:
    """Matching form of a text and, per character of it, the index of its source character."""

    text: str
    index: tuple[int, ...]
    original: str

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span of the normalised text to one of the original."""
        if start >= end:
            pos = self.index[start] if start < len(self.index) else len(self.original)
            return pos, pos
        return self.index[start], self.index[end - 1] + 1


def _simplified_chars(text: str) -> str:
    converted = to_simplified(text)
    if len(converted) == len(text):
        return converted
    # A phrase conversion changed the length: convert char by char to keep alignment.
    return "".join((to_simplified(ch) or ch)[:1] for ch in text)


def normalize(text: str, max_run: int = 2) -> Normalized:
    """Matching form: t2s, width folded, lower-cased, invisibles and spaces dropped, runs cut.

    A run of the same character longer than ``max_run`` keeps ``max_run`` of them, so
    最最最最 still reads as stacked (最最) and 但　是 reads as 但是.
    """
    simplified = _simplified_chars(text)
    out: list[str] = []
    index: list[int] = []
    run = 0
    for i, ch in enumerate(simplified):
        ch = fold_width(ch).lower()
        if ch.isspace() or _dropped(ch):
            continue
        if out and out[-1] == ch:
            run += 1
            if run > max_run:
                continue
        else:
            run = 1
        out.append(ch)
        index.append(i)
    return Normalized("".join(out), tuple(index), text)


def normalize_query(text: str) -> str:
    """The form retrieval matches on: sanitised, simplified, width folded, lower-cased."""
    return "".join(fold_width(ch) for ch in to_simplified(sanitize(text))).lower()


def sentences(text: str) -> list[tuple[int, int]]:
    """Half-open spans of the sentences of ``text`` (Chinese and ASCII end marks, newlines)."""
    spans = []
    for match in _SENTENCE_END.finditer(text):
        if match.end() > match.start():
            spans.append((match.start(), match.end()))
    return spans
