"""Text hygiene shared by retrieval, drafting and the guardrail.

Two different jobs live here:

* :func:`sanitize` cleans what a customer pasted (control characters, lone surrogates,
  zero-width and bidi marks) and keeps everything a person would see.
* :func:`normalize` builds a form for *matching only* (Traditional to Simplified, full-width
  to half-width, invisible and spacing characters dropped, long runs collapsed) together with
  an index back into the original, so a match in the normalised text points at the span the
  person wrote.

:func:`normalize` runs on every draft the guardrail checks, so it avoids a Python loop per
character: each step first asks one compiled regex whether it has anything to do, and the
usual draft (Simplified, Chinese punctuation, no invisible characters, no long runs) costs a
few C-level string passes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from opencc import OpenCC

_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u180e\u00ad"
_BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"
_INVISIBLE = frozenset(_ZERO_WIDTH + _BIDI)
_KEEP_CONTROLS = frozenset("\n\t")
_SENTENCE_END = re.compile(r"[^。！？!?；;\n]*(?:[。！？!?；;\n]+|$)")

# Chinese punctuation that nearly every draft holds; folded with str.replace, which is far
# cheaper than a per-character table. Anything else full-width goes through the table.
_COMMON_WIDE = "，！？：；（）～"
# Ranges whose characters OpenCC may change: unified ideographs with extension A, the
# compatibility ideographs, and every supplementary ideograph (taken whole, not scanned).
_CJK_SCAN = ((0x3400, 0x9FFF), (0xF900, 0xFAFF))
_CJK_SUPPLEMENTARY = "\U00020000-\U0003ffff"
# Where format, control and spacing characters live outside the ideograph blocks.
_REMOVABLE_SCAN = ((0x0000, 0x33FF), (0xA000, 0xABFF), (0xD800, 0xDFFF), (0xF900, 0xFFFF),
                   (0x11000, 0x11FFF), (0x13000, 0x1343F), (0x1BC00, 0x1BCFF), (0x1D100, 0x1D1FF),
                   (0xE0000, 0xE0FFF))  # fmt: skip


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


@lru_cache(maxsize=1)
def _s2t() -> OpenCC:
    return OpenCC("s2tw")


def to_simplified(text: str) -> str:
    return str(_t2s().convert(text))


def to_traditional(text: str) -> str:
    """Simplified to Traditional characters (Taiwan standard), for writing into Traditional drafts."""
    return str(_s2t().convert(text))


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
    index: Sequence[int]
    original: str

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span of the normalised text to one of the original."""
        if start >= end:
            pos = self.index[start] if start < len(self.index) else len(self.original)
            return pos, pos
        return self.index[start], self.index[end - 1] + 1

    def cover(self, start: int, end: int) -> tuple[int, int]:
        """Like :meth:`span`, but running on over the collapsed tail of a run the span ends in.

        In 亲亲亲亲 the normalised 亲亲 covers the whole run, so a fix replaces all of it.
        """
        first, last = self.span(start, end)
        limit = self.position(end)
        while start < end and last < limit and self.original[last] == self.original[last - 1]:
            last += 1
        return first, last

    def position(self, pos: int) -> int:
        """The original index where normalised position ``pos`` starts (end of text past the end)."""
        return self.index[pos] if pos < len(self.index) else len(self.original)


def _char_class(codes: list[int]) -> str:
    """A regex character class for ``codes`` (sorted), written as ranges."""
    parts: list[str] = []
    start = prev = -2
    for code in [*codes, -1]:
        if code == prev + 1:
            prev = code
            continue
        if start >= 0:
            parts.append(re.escape(chr(start)) if start == prev else f"{re.escape(chr(start))}-{re.escape(chr(prev))}")
        start = prev = code
    return "".join(parts)


@lru_cache(maxsize=1)
def _traditional_codes() -> tuple[int, ...]:
    """The BMP characters t2s converts, found by converting each once."""
    codes = [code for low, high in _CJK_SCAN for code in range(low, high + 1)]
    converted = to_simplified("\n".join(map(chr, codes))).split("\n")
    if len(converted) != len(codes):  # never seen; then every ideograph takes the OpenCC path
        return tuple(codes)
    return tuple(code for code, out in zip(codes, converted, strict=True) if out != chr(code))


@lru_cache(maxsize=1)
def _traditional() -> re.Pattern[str]:
    return re.compile(f"[{_char_class(list(_traditional_codes()))}{_CJK_SUPPLEMENTARY}]")


def has_traditional(text: str) -> bool:
    """Whether t2s would change ``text`` (it holds a Traditional or supplementary ideograph)."""
    return _traditional().search(text) is not None


def _removable(ch: str) -> bool:
    return ch.isspace() or _dropped(ch)


@lru_cache(maxsize=1)
def _removable_codes() -> tuple[int, ...]:
    return tuple(code for low, high in _REMOVABLE_SCAN for code in range(low, high + 1) if _removable(chr(code)))


@lru_cache(maxsize=1)
def _removable_re() -> re.Pattern[str]:
    return re.compile(f"[{_char_class(list(_removable_codes()))}]")


@lru_cache(maxsize=1)
def _removable_bmp() -> re.Pattern[str]:
    """The BMP part alone: its search runs on the regex engine's bitmap (see :func:`_unusual`)."""
    return re.compile(f"[{_char_class([code for code in _removable_codes() if code < 0x10000])}]")


def _single_lower(ch: str) -> str:
    low = ch.lower()
    return low if len(low) == 1 else ch


_SUPPLEMENTARY = re.compile("[\U00010000-\U0010ffff]")
# Supplementary characters other than the pictographs of U+1F000-U+1FAFF (emoji): ideographs to
# convert, tags and format characters to drop.
_NOT_EMOJI_SUPPLEMENTARY = re.compile("[\U00010000-\U0001efff\U0001fb00-\U0010ffff]")
_WIDE = re.compile("[\uff01-\uff5e\u3000]")


def _narrow(match: re.Match[str]) -> str:
    return " " if match.group() == "\u3000" else chr(ord(match.group()) - 0xFEE0)


@lru_cache(maxsize=8)
def _run_re(max_run: int) -> re.Pattern[str]:
    # Spelled out as (.)\1\1 rather than (.)\1{2}: the regex engine runs the former faster.
    return re.compile("(.)" + "\\1" * max_run + "\\1*", re.DOTALL)


def _simplified_chars(text: str) -> str:
    if not has_traditional(text):
        return text
    converted = to_simplified(text)
    if len(converted) == len(text):
        return converted
    # A phrase conversion changed the length: convert char by char to keep alignment.
    return "".join((to_simplified(ch) or ch)[:1] for ch in text)


def _fold_common(text: str) -> str:
    for wide in _COMMON_WIDE:
        if wide in text:
            text = text.replace(wide, chr(ord(wide) - 0xFEE0))
    return text


def _folded(text: str) -> str:
    """Full-width to half-width, then lower-case, one character for one character."""
    text = _fold_common(text)
    if _WIDE.search(text) is not None:  # a few characters as a rule: cheaper than translating all
        text = _WIDE.sub(_narrow, text)
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else "".join(map(_single_lower, text))


def _without_removable(text: str) -> tuple[str, list[int] | None]:
    supplementary = _SUPPLEMENTARY.search(text) is not None
    if not supplementary and _removable_bmp().search(text) is None:
        return text, None
    # The BMP class runs on the regex engine's bitmap: the whole class only where it is needed.
    removable = _removable_re() if supplementary else _removable_bmp()
    pieces = removable.split(text)  # each removable character is one match of one character
    index: list[int] = []
    pos = 0
    for piece in pieces:
        end = pos + len(piece)
        index.extend(range(pos, end))
        pos = end + 1
    return "".join(pieces), index


def _collapsed(text: str, index: list[int] | None, max_run: int) -> tuple[str, Sequence[int]]:
    runs = _run_re(max_run)
    if runs.search(text) is None:
        return text, index if index is not None else range(len(text))
    source: Sequence[int] = index if index is not None else range(len(text))
    parts: list[str] = []
    kept: list[int] = []
    pos = 0
    for match in runs.finditer(text):
        cut = match.start() + max_run
        parts.append(text[pos:cut])
        kept.extend(source[pos:cut])
        pos = match.end()
    parts.append(text[pos:])
    kept.extend(source[pos:])
    return "".join(parts), kept


@lru_cache(maxsize=1)
def _unusual() -> re.Pattern[str]:
    """Every BMP character that needs more than folding the common marks and lower-casing.

    Kept to the BMP: a class with one supplementary character loses the regex engine's bitmap
    and costs five times as much; supplementary characters are looked for separately.
    """
    codes = {code for code in range(0x10000) if len(chr(code).lower()) != 1}
    codes.update(code for code in range(0xFF01, 0xFF5F) if chr(code) not in _COMMON_WIDE)
    codes.update(_traditional_codes())
    codes.update(code for code in _removable_codes() if code < 0x10000)
    return re.compile(f"[{_char_class(sorted(codes))}]")


def normalize(text: str, max_run: int = 2) -> Normalized:
    """Matching form: t2s, width folded, lower-cased, invisibles and spaces dropped, runs cut.

    A run of the same character longer than ``max_run`` keeps ``max_run`` of them, so
    最最最最 still reads as stacked (最最) and 但　是 reads as 但是.
    """
    if _unusual().search(text) is None and _NOT_EMOJI_SUPPLEMENTARY.search(text) is None:
        # The usual draft: Simplified, nothing to drop; only ，！？ and the like to fold. An emoji
        # (a supplementary character with nothing to convert, fold or drop) keeps it usual.
        out, kept = _collapsed(_fold_common(text).lower(), None, max(1, max_run))
        return Normalized(out, kept, text)
    folded = _folded(_simplified_chars(text))
    stripped, index = _without_removable(folded)
    out, kept = _collapsed(stripped, index, max(1, max_run))
    return Normalized(out, kept, text)


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
