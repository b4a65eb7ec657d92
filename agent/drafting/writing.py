"""How the offline composer writes the chosen scripts' sentences as one reply: one opening, one
apology, each fact once, about as long as a person's reply (:func:`compose`). Which scripts
answer is :mod:`agent.drafting.composer`'s choice; the wording rules are its style's data."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from agent.corpus import VARIABLE, fill
from agent.drafting.sentences import (
    Piece,
    assemble,
    bigrams,
    clauses_of,
    content,
    overlap,
    says_again,
    strip_prefix,
)

if TYPE_CHECKING:
    from agent.drafting.composer import ComposerStyle

_NUMBER = re.compile(r"\d+")


def compose(
    replies: list[str],
    style: ComposerStyle,
    closing: bool = False,
    questions: Sequence[str] = (),
    values: dict[str, str] | None = None,
    lead: str = "",
) -> str:
    """One reply from several: one opening, one apology, each fact once, one closing.

    ``lead`` opens the answers (a greeting's brief 在的！), after the address form.

    An answer takes its reply's sentences in order up to its character budget, and past it only
    a sentence that states a shop fact (a ``{variable}`` of the unfilled reply) the question
    names, or that shares `relevant_bigrams` pairs of characters with the question it answers.
    """
    values = values or {}
    pieces: list[Piece] = []
    said: list[str] = []
    numbers: set[str] = set()  # the numbers the draft has stated
    asked_for: set[str] = set()  # what the draft has asked the customer for (ask_once)
    apologised = False
    for n, reply in enumerate(replies):
        body = strip_prefix(reply.strip(), style.openers)
        budget = style.first_answer_chars if n == 0 else style.extra_answer_chars
        asked_text = content(questions[n]) if n < len(questions) else ""
        asked = bigrams(asked_text)
        kept_chars = 0
        for end, raw_clauses in clauses_of(body):
            clauses = [fill(_referred(c, said, values, style), values) for c in raw_clauses]
            facts = {content(values.get(m, "")) for c in raw_clauses for m in VARIABLE.findall(c)} - {""}
            asked_fact = any(bigrams(f) & asked or f in asked_text for f in facts)
            relevant = _pairs(content("".join(clauses)), asked) >= style.relevant_bigrams
            if kept_chars >= budget and not (asked_fact or relevant):
                continue
            kept: list[str] = []
            before = len(said)  # what earlier sentences said
            numbers_before, lost_first = set(numbers), False
            for i, clause in enumerate(clauses):
                if i == 0 and any(content(clause).startswith(content(c)) for c in style.closers if content(c)):
                    kept = []
                    break
                stripped = strip_prefix(clause, style.say_once)
                if stripped != clause:
                    if apologised:
                        clause = stripped
                        if not content(clause) or clause.startswith(tuple(style.apology_tails)):
                            continue
                    apologised = True
                elif not kept and clause.startswith(tuple(style.apology_tails)) and apologised:
                    continue
                key = content(clause)
                sentence = "".join(said[before:])  # what this sentence holds so far
                if len(replies) > 1 and _spare(key, kept_chars + len(sentence), asked, style):
                    continue
                if not key or _repeats(key, sentence, said, before, numbers, style):
                    lost_first = lost_first or not kept
                    continue
                clause = _asked_again(clause, asked_for, style)  # after the repeat test, on what it said
                key = content(clause)
                if not key:
                    continue
                kept.append(clause)
                asked_for.update(rule.word for rule in style.ask_once if rule.word in clause)
                said.append(key)
                numbers.update(_NUMBER.findall(key))
            if lost_first and len("".join(said[before:])) < style.repeat_min_run:
                # What is left of a sentence whose first clause went as a repeat (会快一些) is no fact.
                del said[before:]
                numbers = numbers_before
                kept = []
            if kept:
                pieces.append(Piece(kept, end))
                kept_chars += len("".join(said[before:]))
    text = lead + assemble(pieces)
    first_clause = re.split(r"[，,。！？!?]", text, maxsplit=1)[0]
    opener = "" if any(w in first_clause for w in style.address_words) else style.open_with
    text = opener + text
    if closing and not says_again(content(style.close_with), said, style.repeat_min_run):
        text += style.close_with
    return text


def _asked_again(clause: str, asked_for: set[str], style: ComposerStyle) -> str:
    """``clause`` without what it asks again (ask_once); empty when that was all it said."""
    for rule in style.ask_once:
        if rule.word not in asked_for or rule.word not in clause:
            continue
        if content(clause) in {content(a) for a in rule.alone}:
            return ""
        for words in rule.drop:
            clause = clause.replace(words, "")
    return clause


def _referred(clause: str, said: list[str], values: dict[str, str], style: ComposerStyle) -> str:
    """``clause`` with a shop value the draft already named said by its short reference
    (新疆、西藏、广西 named twice: the second time 这几个地区)."""
    for name, ref in style.refer_again.items():
        mark = "{" + name + "}"
        if mark in clause and values.get(name) and any(content(values[name]) in s for s in said):
            clause = clause.replace(mark, ref)
    return clause


def _spare(key: str, held: int, asked: set[str], style: ComposerStyle) -> bool:
    """Whether a clause of an answer beside others can go: the answer already holds
    `several_clause_chars` characters and the clause states no number, holds no fact word and
    shares too few character pairs with the question (可以帮您推荐, 也可转接主管)."""
    return (
        0 < style.several_clause_chars <= held
        and not _NUMBER.search(key)
        and not any(w in key for w in style.fact_words)
        and _pairs(key, asked) < style.several_relevant_bigrams
    )


def _repeats(key: str, sentence: str, said: list[str], before: int, numbers: set[str], style: ComposerStyle) -> bool:
    """Whether a clause says again what the draft said: a long run (which may cross a clause
    boundary, so the clause is tested with what its sentence holds), a short run with no new
    number, or most of its character pairs."""
    if says_again(sentence + key, ["".join(said[:before])], style.repeat_min_run):
        return True
    short = style.repeat_short_run
    if short and says_again(key, said, short) and set(_NUMBER.findall(key)) <= numbers:
        return True
    return overlap(key, said) >= style.repeat_overlap


def _pairs(key: str, asked: set[str]) -> int:
    """How many character pairs a clause shares with the question it answers."""
    return len(asked & bigrams(key))
