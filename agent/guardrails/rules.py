"""``corpus/tone_rules.yaml``: the tone rules as data, validated strictly and compiled once.

The file holds, per rule, keyword groups (literal words plus optional context regexes),
allow-lists, the refusal cues, openers and the questions a reply may decline, the fix table
and the facts a fix must keep (its header explains each field to supervisors).
:func:`load_rules` validates every field (:mod:`agent.guardrails.spec`) and raises one
:class:`~agent.errors.CorpusError` listing every problem, each naming the file and the field,
then compiles (:mod:`agent.guardrails.compiler`); :func:`rules_for` caches the compiled
:class:`RuleSet` by the file's mtime and size, so everything that depends only on the rules is
built once per version of the file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agent.datafile import StrictLoader
from agent.errors import CorpusError
from agent.guardrails.compiled import Entry, FixTable, Intent, RuleSet
from agent.guardrails.compiler import Compiler, trie_pattern
from agent.guardrails.spec import (
    CUE,
    LEXICAL_RULES,
    REFUSAL_RULE,
    RULES_FILE,
    KeywordGroup,
    LexicalRuleId,
    ToneRulesSpec,
    _messages,
    say,
)

__all__ = [
    "CUE",
    "LEXICAL_RULES",
    "REFUSAL_RULE",
    "RULES_FILE",
    "Entry",
    "FixTable",
    "Intent",
    "KeywordGroup",
    "LexicalRuleId",
    "RuleSet",
    "ToneRulesSpec",
    "load_rules",
    "rules_for",
    "say",
    "trie_pattern",
]


def _read(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=StrictLoader)  # no key said twice
    except FileNotFoundError:
        raise CorpusError(say("missing_file", path=path)) from None
    except OSError as exc:
        raise CorpusError(say("cannot_read", path=path, error=exc.strerror)) from None
    except UnicodeDecodeError:
        raise CorpusError(say("not_utf8", path=path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise CorpusError(say("invalid_yaml", path=path, where=where, problem=problem)) from None


def _schema_problems(path: Path, exc: ValidationError) -> list[str]:
    known: dict[str, str] = _messages()["pydantic"]
    lines = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "(root)"
        template = known.get(error["type"])
        context = error.get("ctx") or {}
        message = template.format(**context) if template is not None else error["msg"]
        lines.append(say("field", path=path, field=field, message=message))
    return lines


def load_rules(path: Path) -> RuleSet:
    """Read, validate and compile a tone rules file; CorpusError lists every problem."""
    raw = _read(path)
    try:
        spec = ToneRulesSpec.model_validate(raw)
    except ValidationError as exc:
        problems = _schema_problems(path, exc)
        raise CorpusError(problems[0], problems) from None
    compiler = Compiler(path, spec)
    ruleset = compiler.compile()
    if compiler.problems:
        raise CorpusError(compiler.problems[0], compiler.problems)
    return ruleset


@lru_cache(maxsize=8)
def _cached(path: Path, mtime_ns: int, size: int) -> RuleSet:
    return load_rules(path)


def rules_for(corpus_dir: Path) -> RuleSet:
    """The rules of ``corpus_dir/tone_rules.yaml``, recompiled only when the file changes."""
    path = corpus_dir / RULES_FILE
    try:
        stat = path.stat()
    except OSError:
        raise CorpusError(say("missing_file", path=path)) from None
    rules = _cached(path, stat.st_mtime_ns, stat.st_size)
    if rules.model_stamp is not None:
        model_path, mtime_ns, size = rules.model_stamp
        try:
            model = model_path.stat()
        except OSError:
            model = None
        if model is None or (model.st_mtime_ns, model.st_size) != (mtime_ns, size):
            _cached.cache_clear()  # the model file changed under the same rules file
            rules = _cached(path, stat.st_mtime_ns, stat.st_size)
    return rules
