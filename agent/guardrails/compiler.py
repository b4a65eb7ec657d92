"""Compiling a validated tone rules spec into a :class:`~agent.guardrails.compiled.RuleSet`.

Every literal (keywords and the allow words that touch them) becomes ONE trie-shaped regex
over the normalised text that finds the longest literal starting at a position; a find is
looked up in a dict that lists the keyword entries starting there (the literal's prefixes)
with their context checks. A clean draft costs one regex pass; context regexes run only
where a keyword was found.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from re import _parser  # type: ignore[attr-defined]
from typing import Any

from agent.guardrails.compiled import Entry, Finder, FixTable, Intent, RuleSet
from agent.guardrails.refusal_model import RefusalModel, read_model
from agent.guardrails.spec import (
    CUE,
    LEXICAL_RULES,
    REFUSAL_RULE,
    FactsSpec,
    FixSpec,
    IntentSpec,
    KeywordGroup,
    LexicalRuleSpec,
    RefusalSpec,
    ToneRulesSpec,
    say,
)
from agent.text import has_traditional, normalize


def trie_pattern(words: Iterable[str]) -> str:
    """One regex matching any of ``words``, shaped as a trie so that it prefers the longest."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}
    return _emit(root)


def _emit(node: dict[str, Any]) -> str:
    branches = [re.escape(ch) + _emit(child) for ch, child in sorted(node.items()) if ch]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:
        return f"(?:{body})?"
    return body


def _unmatchable(pattern: str) -> Iterator[str]:
    """Characters of a regex (outside escapes) that the normalised text can never contain."""
    escaped = False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch.isspace() or ch != ch.lower() or 0xFF01 <= ord(ch) <= 0xFF5E or has_traditional(ch):
            yield ch


@dataclass
class _Keyword:
    scope: str
    before: re.Pattern[str] | None
    not_before: re.Pattern[str] | None
    after: re.Pattern[str] | None
    not_after: re.Pattern[str] | None
    span_before: bool


class Compiler:
    """Builds a RuleSet from a validated spec, collecting every problem on the way."""

    def __init__(self, path: Path, spec: ToneRulesSpec) -> None:
        self.path = path
        self.spec = spec
        self.problems: list[str] = []

    def problem(self, field: str, message: str) -> None:
        self.problems.append(say("field", path=self.path, field=field, message=message))

    def regex(self, field: str, source: str, suffix: str = "", prefix: str = "") -> re.Pattern[str] | None:
        bad = list(dict.fromkeys(_unmatchable(source)))
        for ch in bad:
            normal = normalize(ch, self.spec.max_run).text
            hint = say("hint_replace", normalized=normal) if normal else say("hint_delete")
            self.problem(field, say("unmatchable", char=ch, hint=hint))
        wrapped = f"{prefix}(?:{source}){suffix}"
        try:
            # ``source`` on its own must be a regex: parsing it finds what compiling it would (the
            # compiled wrapper holds the same parsed tree: prefix and suffix hold no group).
            _parser.parse(source)
            compiled = re.compile(wrapped)
        except re.error:
            try:  # the error to report: the first of compiling ``source``, then the wrapper
                re.compile(source)
                compiled = re.compile(wrapped)
            except re.error as exc:
                self.problem(field, say("bad_regex", error=exc.msg, pos=(exc.pos or 0) + 1))
                return None
        return None if bad else compiled

    def optional(self, field: str, source: str | None, suffix: str = "", prefix: str = "") -> re.Pattern[str] | None:
        return None if source is None else self.regex(field, source, suffix, prefix)

    def word(self, field: str, word: str, shortest: int = 2) -> str | None:
        normal = normalize(word, self.spec.max_run).text
        if len(normal) < shortest:
            self.problem(field, say("short_word", word=word) if shortest > 1 else say("empty_word"))
            return None
        return normal

    def words(self, field: str, words: list[str], shortest: int = 2) -> list[str]:
        out = [self.word(f"{field}.{i}", w, shortest) for i, w in enumerate(words)]
        return [w for w in out if w is not None]

    def template(self, field: str, message: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(message) if name is not None}
            if names - {"text"}:
                raise ValueError(", ".join(sorted(names - {"text"})))
            message.format(text="")
        except (ValueError, IndexError, KeyError) as exc:
            self.problem(field, say("bad_template", error=exc))
        return message

    def keywords(self, field: str, scope: str, groups: list[KeywordGroup]) -> dict[str, list[_Keyword]]:
        found: dict[str, list[_Keyword]] = {}
        for i, group in enumerate(groups):
            where = f"{field}.{i}"
            before = self.optional(f"{where}.before", group.before, r"\Z")
            keyword = _Keyword(
                scope,
                before,
                self.optional(f"{where}.not_before", group.not_before, r"\Z"),
                self.optional(f"{where}.after", group.after),
                self.optional(f"{where}.not_after", group.not_after),
                group.span_before and before is not None,
            )
            for word in self.words(f"{where}.words", group.words):
                found.setdefault(word, []).append(keyword)
        return found

    def compile(self) -> RuleSet:
        spec = self.spec
        keywords: dict[str, list[_Keyword]] = {}
        allow: dict[str, tuple[str, ...]] = {}
        messages: dict[str, str] = {}
        for rule in LEXICAL_RULES:
            rule_spec: LexicalRuleSpec = getattr(spec.rules, rule)
            messages[rule] = self.template(f"rules.{rule}.message", rule_spec.message)
            for word, found in self.keywords(f"rules.{rule}.keywords", rule, rule_spec.keywords).items():
                keywords.setdefault(word, []).extend(found)
            allow[rule] = tuple(self.words(f"rules.{rule}.allow", rule_spec.allow))
        refusal = spec.refusal
        messages[REFUSAL_RULE] = self.template("refusal.message", refusal.message)
        for word, found in self.keywords("refusal.cues", CUE, refusal.cues).items():
            keywords.setdefault(word, []).extend(found)
        allow[CUE] = tuple(self.words("refusal.allow", refusal.allow))
        self.shadowing(allow, keywords)
        scan, entries, allowed = _scan_table(keywords, allow)
        literals = tuple(sorted(entries))
        openers = self.openers(refusal)
        negated = self.negated(refusal.negators)
        intents = tuple(self.intents(refusal.intents, negated))
        topic = f"[^,.。!?~;:]{{0,{refusal.grant_topic}}}?" if refusal.grant_topic else ""
        facts = self.facts(spec.facts)
        model, model_stamp = self.refusal_model(refusal)
        return RuleSet(
            path=self.path,
            max_run=spec.max_run,
            window=spec.window,
            scan=scan,
            finder=finder(literals),
            literals=literals,
            entries=entries,
            allowed=allowed,
            messages=messages,
            allow=allow,
            opener=openers[0],
            greeting=openers[1],
            weak_opener=openers[2],
            apology=refusal.apology,
            fix_prefix=refusal.fix_prefix,
            greeting_mark=refusal.greeting_marks[:1],
            marks=normalize(refusal.greeting_marks, spec.max_run).text,
            cue_rules=frozenset(refusal.rules_as_cues),
            intents=intents,
            intent_query=re.compile("|".join(f"(?:{i.query.pattern})" for i in intents)) if intents else None,
            grant_opener=self.optional("refusal.grants", refusal.grants, prefix=openers[1].pattern + topic + negated),
            negators=tuple(sorted(set(self.words("refusal.negators", refusal.negators, shortest=1)), key=len)),
            fixes=self.fixes(spec.fixes, facts),
            facts=facts,
            manual_fix=spec.manual_fix,
            refusal_model=model,
            model_stamp=model_stamp,
        )

    def refusal_model(self, refusal: RefusalSpec) -> tuple[RefusalModel | None, tuple[Path, int, int] | None]:
        """The model file named by ``refusal.model`` (beside the rules file), at its threshold."""
        if refusal.model is None:
            return None, None
        path = self.path.parent / refusal.model
        try:
            model = read_model(path)
            stat = path.stat()
        except (OSError, ValueError) as exc:
            self.problem("refusal.model", say("bad_model", name=path.name, problem=exc))
            return None, None
        return model.at(refusal.model_threshold), (path, stat.st_mtime_ns, stat.st_size)

    def shadowing(self, allow: dict[str, tuple[str, ...]], keywords: dict[str, list[_Keyword]]) -> None:
        """An allow word equal to a keyword would switch that keyword off everywhere: a mistake."""
        for scope, words in allow.items():
            field = "refusal.allow" if scope == CUE else f"rules.{scope}.allow"
            for word in words:
                if word in keywords:
                    self.problem(field, say("allow_is_keyword", word=word))

    def openers(self, refusal: RefusalSpec) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
        greetings = self.words("refusal.greetings", refusal.greetings, shortest=1)
        marks = normalize(refusal.greeting_marks, self.spec.max_run).text
        mark = f"[{re.escape(marks)}]?" if marks else ""
        # An emoji or mark before the first word is no word (🙏非常抱歉 opens with the apology).
        prefix = f"\\W*(?:(?:{trie_pattern(greetings)}){mark})*"
        apology = self.word("refusal.apology", refusal.apology) or refusal.apology
        weak = self.words("refusal.weak_openers", refusal.weak_openers)
        weak_alt = "|".join(re.escape(w) for w in sorted(weak, key=len, reverse=True)) or "(?!)"
        # Matching keeps a doubled character (亲亲 is a pet name), so a doubled one in the apology
        # (非非常抱歉, a slip of the keys) still opens with it.
        doubled = "".join(f"{re.escape(ch)}{{1,2}}" for ch in apology)
        return (
            re.compile(prefix + doubled),
            re.compile(prefix),
            re.compile(f"{prefix}({weak_alt})"),
        )

    def negated(self, negators: list[str]) -> str:
        """Lookbehinds that refuse a match right after a negator (不能给您便宜 grants nothing)."""
        words = self.words("refusal.negators", negators, shortest=1)
        by_length: dict[int, list[str]] = {}
        for word in sorted(set(words)):
            by_length.setdefault(len(word), []).append(re.escape(word))
        return "".join(f"(?<!{'|'.join(alts)})" for _, alts in sorted(by_length.items()))

    def intents(self, specs: list[IntentSpec], negated: str) -> Iterator[Intent]:
        for i, intent in enumerate(specs):
            where = f"refusal.intents.{i}"
            query = self.regex(f"{where}.query", intent.query)
            declines = self.optional(f"{where}.declines", intent.declines)
            grants = self.optional(f"{where}.grants", intent.grants)  # negators are checked at each match
            declines = prefiltered(declines) if declines is not None else None
            grants = prefiltered(grants) if grants is not None else None
            if query is not None:
                yield Intent(intent.name, query, declines, grants)

    def fixes(self, specs: list[FixSpec], facts: re.Pattern[str]) -> dict[str, FixTable]:
        """Per rule, its fix entries joined into one regex (an earlier entry wins where two match).

        A replacement may reword or drop, never state a fact: one holding a number, a courier or
        a time word is a problem (so is an apology prefix that holds one).
        """
        sources: dict[str, list[str]] = {}
        replacements: dict[str, dict[str, str]] = {}
        for where, text in (
            ("refusal.fix_prefix", self.spec.refusal.fix_prefix),
            ("refusal.apology", self.spec.refusal.apology),
        ):
            if facts.search(normalize(text, self.spec.max_run).text):
                self.problem(where, say("fix_adds_fact", text=text))
        for i, fix in enumerate(specs):
            if facts.search(normalize(fix.replace, self.spec.max_run).text):
                self.problem(f"fixes.{i}.replace", say("fix_adds_fact", text=fix.replace))
            elif self.regex(f"fixes.{i}.match", fix.match) is not None:
                sources.setdefault(fix.rule, []).append(f"(?P<f{i}>{fix.match})")
                replacements.setdefault(fix.rule, {})[f"f{i}"] = fix.replace
        return {rule: FixTable(re.compile("|".join(alts)), replacements[rule]) for rule, alts in sources.items()}

    def facts(self, spec: FactsSpec) -> re.Pattern[str]:
        names = self.words("facts.couriers", spec.couriers) + self.words("facts.times", spec.times)
        alternatives = [re.escape(n) for n in sorted(set(names), key=len, reverse=True)]
        return re.compile("|".join([r"\d+(?:[.:]\d+)*", *alternatives]))


def _first_chars(items: Any) -> tuple[set[str] | None, bool]:
    """The characters a match of the parsed regex ``items`` can start with, and whether it can be empty.

    None when unknown (a class too wide, a back reference, ...)."""
    found: set[str] = set()
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            found.add(chr(av))
            return found, False
        if name == "IN":
            for inner, value in av:
                if str(inner) == "LITERAL":
                    found.add(chr(value))
                elif str(inner) == "RANGE" and value[1] - value[0] < 64:
                    found.update(chr(code) for code in range(value[0], value[1] + 1))
                else:
                    return None, False
            return found, False
        if name in ("SUBPATTERN", "BRANCH", "MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            parts = [av[3]] if name == "SUBPATTERN" else av[1] if name == "BRANCH" else [av[2]]
            empty = name.endswith("REPEAT") and av[0] == 0
            for part in parts:
                chars, nullable = _first_chars(part)
                if chars is None:
                    return None, False
                found |= chars
                empty = empty or nullable
            if not empty:
                return found, False
            continue
        if name in ("ASSERT", "ASSERT_NOT", "AT"):  # zero-width: the next item consumes the first character
            continue
        return None, False
    return found, True


def prefiltered(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """``pattern`` for ``search``: led by the class of its possible first characters when that is known.

    The regex engine skips fast to a character of a leading class, but not to the start of a group
    of alternatives or an optional part ((?:给您|为您)改, (?:能|会)?保证): there it tries every
    position, several times slower over a 200-character draft. A match of the result starts where
    the original's would (and holds only its first character).
    """
    try:
        chars, nullable = _first_chars(_parser.parse(pattern.pattern, pattern.flags))
    except Exception:  # an engine detail changed: keep the pattern as it is
        return pattern
    if chars is None or nullable or not 0 < len(chars) <= 64:
        return pattern
    lead = "".join(re.escape(ch) for ch in sorted(chars))
    return re.compile(f"[{lead}](?<=(?=(?:{pattern.pattern})).)", pattern.flags)


def finder(literals: tuple[str, ...]) -> Finder | None:
    """An Aho-Corasick automaton over ``literals`` (pattern index = position in ``literals``), or None
    without ahocorasick_rs, when the scan regex does the same work more slowly."""
    try:
        import ahocorasick_rs
    except ImportError:  # pragma: no cover - a dependency; the regex scan covers its absence
        return None
    automaton: Finder = ahocorasick_rs.AhoCorasick(list(literals), matchkind=ahocorasick_rs.MatchKind.Standard)
    return automaton


def _touches(allowed: str, keywords: set[str], heads: set[str]) -> bool:
    """An allow word matters to the scan when it holds a keyword or starts before one and runs into
    it: one of its substrings is a keyword, or one of its tails is a proper head of a keyword
    (``heads``: every keyword's prefixes shorter than itself)."""
    size = len(allowed)
    if any(allowed[i:j] in keywords for i in range(size) for j in range(i + 1, size + 1)):
        return True
    return any(allowed[i:] in heads for i in range(size))


def _scan_table(
    keywords: dict[str, list[_Keyword]], allow: dict[str, tuple[str, ...]]
) -> tuple[re.Pattern[str], dict[str, tuple[Entry, ...]], frozenset[str]]:
    """The scan regex and, per literal, the keyword entries that start where it starts.

    The scan looks for the longest literal at every position, so the keywords starting at a
    position are exactly the prefixes of the literal found there. An allow word holds for every
    rule and for the refusal cues: no keyword starting inside it is a finding.
    """
    allowed = frozenset(word for words in allow.values() for word in words)
    words = set(keywords)
    heads = {word[:i] for word in words for i in range(1, len(word))}
    literals = words | {a for a in allowed if _touches(a, words, heads)}
    order = {word: i for i, word in enumerate(keywords)}  # entries keep the keywords' order
    entries: dict[str, tuple[Entry, ...]] = {}
    for literal in literals:
        found: list[Entry] = []
        if literal not in allowed:
            starting = [literal[:i] for i in range(1, len(literal) + 1) if literal[:i] in keywords]
            for word in sorted(starting, key=order.__getitem__):
                found.extend(
                    Entry(k.scope, len(word), k.before, k.not_before, k.after, k.not_after, k.span_before)
                    for k in keywords[word]
                )
        entries[literal] = tuple(found)
    return re.compile(trie_pattern(literals)), entries, allowed
