"""Chinese numerals to Arabic digits, keeping the index back into the original text.

``十五元`` and ``15元`` are the same fact; so are ``七天`` and ``7天``, ``两到四天`` and
``2到4天``. A run of numeral characters becomes its value: with units it is read positionally
(``一百零五`` -> 105, ``十五`` -> 15, ``三万`` -> 30000); without units it is read digit by digit
(``二〇二四`` -> 2024). The characters and their values live in ``numerals.txt`` beside this file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from agent.text import Normalized

_TABLE = Path(__file__).with_name("numerals.txt")
_SMALL_UNITS = (10, 100, 1000)


@lru_cache(maxsize=1)
def numeral_values() -> dict[str, int]:
    """Each numeral character and its value, from ``numerals.txt``."""
    values: dict[str, int] = {}
    for line in _TABLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        char, value = line.split()
        values[char] = int(value)
    return values


def _positional(values: list[int]) -> int:
    total = section = number = 0
    for value in values:
        if value < 10:
            number = value
        elif value in _SMALL_UNITS:
            section += (number or 1) * value
            number = 0
        else:  # 万, 亿
            total = (total + section + number) * value
            section = number = 0
    return total + section + number


def read_numeral(run: str) -> str:
    """The Arabic form of a run of numeral characters."""
    table = numeral_values()
    values = [table[ch] for ch in run]
    if all(v < 10 for v in values):
        return "".join(str(v) for v in values)
    return str(_positional(values))


def to_arabic(norm: Normalized) -> Normalized:
    """Replace every run of Chinese numerals in ``norm`` by its digits; spans still map back."""
    table = numeral_values()
    text, out, index = norm.text, [], []
    i = 0
    while i < len(text):
        if text[i] not in table:
            out.append(text[i])
            index.append(norm.index[i])
            i += 1
            continue
        j = i
        while j < len(text) and text[j] in table:
            j += 1
        digits = read_numeral(text[i:j])
        for k, ch in enumerate(digits):
            out.append(ch)
            index.append(norm.index[min(i + k, j - 1)])
        i = j
    return Normalized("".join(out), tuple(index), norm.original)
