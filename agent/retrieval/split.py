"""Cut a customer message into its questions, by rules kept in ``corpus/retrieval/split.yaml``.

Cuts are found on a matching form of the text (Simplified, width folded) that keeps one
character per original character, so each question is returned in the customer's own words.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.datafile import parse, read_yaml
from agent.text import fold_width, sanitize, to_simplified

_WORD = re.compile(r"\w", re.UNICODE)
_NOT_WORD = re.compile(r"\W+", re.UNICODE)


class SplitRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    marks: str = Field(min_length=1)
    particles: str = ""
    commas: str = ""
    connectors: tuple[str, ...] = ()
    question_words: tuple[str, ...] = ()
    asking_words: tuple[str, ...] = ()
    question_marks: str = ""
    question_pattern: str = ""
    context_chars: int = Field(default=0, ge=0)
    min_chars: int = Field(default=3, ge=0)
    max_questions: int = Field(default=8, ge=1)
    space_cuts: bool = False
    end_particles: str = ""
    question_starts: tuple[str, ...] = ()
    opening_pattern: str = ""
    # A piece that is only one of these asks how to do what the piece before it said (我想让我老公帮我付钱
    # 怎么弄): it is read with that piece.
    joins_previous: tuple[str, ...] = ()

    @field_validator("question_pattern", "opening_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    def asks(self, piece: str, requests: bool = True) -> bool:
        """Whether a piece of a message asks or requests something, rather than only telling.

        With ``requests`` False only a question counts (a question word, mark, particle or the
        pattern), not a request (我想, 帮我): 我想指定顺丰寄过来，需要额外付多少 asks one thing.
        """
        form = _matching_form(piece)
        words = (*self.question_words, *self.asking_words) if requests else self.question_words
        words_only = _NOT_WORD.sub("", form)
        return (
            any(ch in self.question_marks for ch in form)
            or bool(words_only and words_only[-1] in self.particles)  # 有货吗, not the 么 of 什么
            or any(w in form for w in words)
            or bool(self.question_pattern and re.search(self.question_pattern, form))
        )

    def opening(self, form: str) -> int:
        """Where the greeting a message opens with (在吗, 有人吗) ends in its matching form; 0 if none."""
        if not self.opening_pattern:
            return 0
        m = re.match(self.opening_pattern, form)
        return m.end() if m else 0

    def is_context(self, piece: str) -> bool:
        """A short piece that asks nothing (我在成都, 寄到杭州): context for the question before it."""
        return _words(piece) <= self.context_chars and not self.asks(piece)


def load_rules(path: Path) -> SplitRules:
    """The rules in ``path`` (the workspace snapshot holds the ones in use)."""
    return parse(path, SplitRules, read_yaml(path))


def _matching_form(text: str) -> str:
    """Simplified and width-folded, one character per character of ``text``."""
    simplified = to_simplified(text)
    if len(simplified) != len(text):
        simplified = "".join((to_simplified(ch) or ch)[:1] for ch in text)
    return "".join(fold_width(ch) for ch in simplified)


@dataclass(frozen=True, slots=True)
class _Cutter:
    rules: SplitRules

    def cuts(self, form: str) -> list[int]:
        r = self.rules
        cuts = {0, len(form)}
        starts_clause = set(r.marks) | set(r.commas)
        for i, ch in enumerate(form):
            if ch in r.marks and (i + 1 == len(form) or form[i + 1] not in r.marks):
                cuts.add(i + 1)
            if ch in r.particles and i + 1 < len(form) and form[i + 1] in r.commas:
                end = i + 1
                while end < len(form) and form[end] in r.commas:
                    end += 1
                cuts.add(end)
            if ch in r.end_particles and i > 0 and self._ends_unmarked(form, i + 1):
                cuts.add(i + 1)  # 洗了掉色吗图片是实拍吗: a question ends at 吗 with no mark after it
            if i > 0 and form[i - 1] in starts_clause and any(form.startswith(c, i) for c in r.connectors):
                cuts.add(i)
        end = r.opening(form)
        if 0 < end < len(form):
            while end < len(form) and (form[end] in starts_clause or form[end].isspace()):
                end += 1
            cuts.add(end)
        cuts.update(self._between_questions(form))
        cuts.update(self._unmarked_starts(form))
        if r.space_cuts:
            cuts.update(_space_cuts(form))
        return sorted(cuts)

    def _ends_unmarked(self, form: str, at: int) -> bool:
        """Whether a question ends before ``at``: a word goes on there, long enough to ask something."""
        r = self.rules
        nxt = form[at : at + 1]
        return bool(nxt) and nxt not in r.particles and bool(_WORD.match(nxt)) and _words(form[at:]) >= r.min_chars

    def _clauses(self, form: str) -> list[tuple[int, int]]:
        """The spans of ``form`` between marks and commas."""
        return [m.span() for m in re.finditer(f"[^{re.escape(self.rules.marks + self.rules.commas)}]+", form)]

    def _unmarked_starts(self, form: str) -> list[int]:
        """Cuts before a word that starts a second question right after a first (顺丰多少钱今天能发吗):
        where the clause's part before the word and the part from it both ask."""
        r = self.rules
        out = []
        for a, b in self._clauses(form):
            clause = form[a:b]
            for word in r.question_starts:
                at = clause.find(word, 1)
                while at > 0:
                    left, right = clause[:at], clause[at:]
                    if (
                        _WORD.match(left[-1])
                        and min(_words(left), _words(right)) >= r.min_chars
                        and r.asks(left, requests=False)
                        and r.asks(right, requests=False)
                    ):
                        out.append(a + at)
                    at = clause.find(word, at + 1)
        return out

    def _between_questions(self, form: str) -> list[int]:
        """Cuts after the commas that separate two clauses which each ask something (顺丰多少钱，今天能发吗)."""
        clauses = self._clauses(form)
        asks = [self.rules.asks(form[a:b], requests=False) for a, b in clauses]
        return [
            clauses[n + 1][0]
            for n in range(len(clauses) - 1)
            if asks[n] and asks[n + 1] and _only_commas(form[clauses[n][1] : clauses[n + 1][0]], self.rules)
        ]


_SPACES = re.compile(r"[ \t]+")
# An emoji after the greeting (在吗😊 江浙沪包邮吗) leaves it a greeting.
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]")


def _space_cuts(form: str) -> list[int]:
    """Cuts after the spaces customers type between questions (EMS多少 新疆到不到 要几天).

    A space between two Latin letters or digits (iPhone 12, 165 110斤) is part of the question.
    """
    cuts = []
    for m in _SPACES.finditer(form):
        a, b = m.span()
        if a == 0 or b == len(form):
            continue
        if not (_latin(form[a - 1]) and _latin(form[b])):
            cuts.append(b)
    return cuts


def _latin(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _only_commas(gap: str, rules: SplitRules) -> bool:
    return bool(gap) and all(ch in rules.commas for ch in gap)


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _strip(piece: str, rules: SplitRules) -> str:
    return piece.strip(rules.commas + " \t\n")


def _merge_short(pieces: list[str], rules: SplitRules) -> list[str]:
    merged: list[str] = []
    carry = ""
    for n, piece in enumerate(pieces):
        piece = carry + piece
        carry = ""
        if n == 0 and len(pieces) > 1 and _opens_only(piece, rules):
            merged.append(piece)  # 在吗 before a question is answered on its own (在的)
            continue
        if merged and _only_words(piece) in rules.joins_previous:
            # Joined without the space between: one question, not two pieces typed together.
            merged[-1] = _strip(merged[-1], rules) + _strip(piece, rules)
            continue
        if _words(piece) < rules.min_chars:
            carry = piece
            continue
        merged.append(piece)
    if carry:
        if merged:
            merged[-1] = merged[-1] + carry
        elif _words(carry):
            merged.append(carry)
    return merged


def _only_words(piece: str) -> str:
    """The piece's word characters in the matching form (怎么弄？ -> 怎么弄)."""
    return _NOT_WORD.sub("", _matching_form(piece))


def _opens_only(piece: str, rules: SplitRules) -> bool:
    """Whether a piece is nothing but the opening greeting."""
    form = _EMOJI.sub("", _matching_form(_strip(piece, rules))).rstrip("".join(rules.marks) + " ")
    return bool(form) and rules.opening(form) == len(form)


def split_questions(message: str, rules: SplitRules) -> list[str]:
    """The questions of ``message`` in order, each in the customer's own (sanitised) words."""
    text = sanitize(message)
    form = _matching_form(text)
    cuts = _Cutter(rules).cuts(form)
    pieces = [text[a:b] for a, b in itertools.pairwise(cuts)]
    pieces = [p for p in pieces if _strip(p, rules)]
    pieces = _merge_short(pieces, rules)
    if len(pieces) > rules.max_questions:  # each question is retrieved: bound the work per message
        pieces[rules.max_questions - 1 :] = ["".join(pieces[rules.max_questions - 1 :])]
    return [_strip(p, rules) for p in pieces]
