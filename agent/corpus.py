"""Load and validate the script corpus (``corpus/scripts/*.yaml``) and shop profiles.

A corpus file holds one category::

    category: bargaining        # stable name, also the prefix of its script ids
    label: 议价                  # what supervisors and agents read
    scripts:
      - id: bargaining.discount
        title: ...
        questions: [...]        # at least 6 ways customers ask
        reply: ...              # may use {variables} of the shop profile
        declines: true
        ...

Shops live in ``corpus/shops/NAME.yaml``; every shop starts from ``default.yaml`` and
overrides what it names. Problems are reported one line each, naming file, script and field.
The checks that span files (variables, tone, emergency rules) are :mod:`agent.workspace.validate`'s.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from agent.datafile import field_errors, read_yaml
from agent.errors import CorpusError, UnknownShopError
from agent.text import normalize_query
from agent.types import VARIABLE as VARIABLE  # re-exported: the {variable} pattern of scripts and shops
from agent.types import Script, Shop

_QUESTION_KEY = re.compile(r"[\W_]+", re.UNICODE)


class _CategoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: str
    label: str
    scripts: list[dict[str, Any]]


@dataclass(frozen=True)
class Category:
    name: str
    label: str
    path: Path


@dataclass(frozen=True)
class Corpus:
    """Every script, by id, with the category each came from and the file it lives in."""

    scripts: tuple[Script, ...]
    categories: dict[str, Category]
    files: dict[str, Path] = field(default_factory=dict)

    def by_id(self) -> dict[str, Script]:
        return {s.id: s for s in self.scripts}

    def get(self, script_id: str) -> Script | None:
        return self.by_id().get(script_id)

    def stats(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for script in self.scripts:
            counts[script.category] = counts.get(script.category, 0) + 1
        return {
            "scripts": len(self.scripts),
            "questions": sum(len(s.questions) for s in self.scripts),
            "categories": dict(sorted(counts.items())),
        }


def content_hash(script: Script) -> str:
    """Changes whenever anything that is embedded or shown for the script changes."""
    return hashlib.sha256(script.model_dump_json().encode()).hexdigest()[:16]


def _load_file(path: Path, problems: list[str]) -> tuple[Category | None, list[Script]]:
    try:
        raw = read_yaml(path)
    except CorpusError as exc:
        problems.append(exc.message)
        return None, []
    try:
        parsed = _CategoryFile.model_validate(raw)
    except ValidationError as exc:
        problems.extend(f"{path}: {line}" for line in field_errors(exc))
        return None, []
    category = Category(parsed.category, parsed.label, path)
    scripts = []
    for position, entry in enumerate(parsed.scripts):
        script_id = entry.get("id", f"#{position + 1}") if isinstance(entry, dict) else f"#{position + 1}"
        try:
            scripts.append(Script.model_validate({**entry, "category": parsed.category}))
        except (ValidationError, TypeError) as exc:
            lines = field_errors(exc) if isinstance(exc, ValidationError) else ["not a mapping"]
            problems.extend(f"{path}: script {script_id}: {line}" for line in lines)
    return category, scripts


def _question_key(question: str) -> str:
    return _QUESTION_KEY.sub("", normalize_query(question))


def _structure_problems(corpus: Corpus) -> Iterator[str]:
    seen: dict[str, str] = {}
    for script in corpus.scripts:
        where = f"{corpus.files[script.id]}: script {script.id}"
        for i, question in enumerate(script.questions):
            key = _question_key(question)
            if not key:
                yield f"{where}: field questions.{i}: empty question"
            elif key in seen:
                yield f"{where}: field questions.{i}: {question!r} is also a question of {seen[key]}"
            else:
                seen[key] = script.id


def load_corpus(corpus_dir: Path) -> Corpus:
    """Load every category file; raise one CorpusError listing every problem found."""
    corpus, problems = collect(corpus_dir)
    if problems:
        raise CorpusError(problems[0], problems)
    return corpus


def collect(corpus_dir: Path) -> tuple[Corpus, list[str]]:
    """The scripts that load, and every problem found on the way."""
    scripts_dir = corpus_dir / "scripts"
    paths = sorted(scripts_dir.glob("*.yaml"))
    if not paths:
        raise CorpusError(f"{scripts_dir}: no *.yaml script files found")
    problems: list[str] = []
    categories: dict[str, Category] = {}
    scripts: list[Script] = []
    files: dict[str, Path] = {}
    for path in paths:
        category, loaded = _load_file(path, problems)
        if category is None:
            continue
        if category.name in categories:
            problems.append(
                f"{path}: field category: {category.name!r} is also the category of {categories[category.name].path}"
            )
        categories[category.name] = category
        for script in loaded:
            if script.id in files:
                problems.append(f"{path}: script {script.id}: field id: duplicate id, also in {files[script.id]}")
                continue
            files[script.id] = path
            scripts.append(script)
    corpus = Corpus(tuple(scripts), categories, files)
    problems.extend(_structure_problems(corpus))
    return corpus, problems


# --- shops -----------------------------------------------------------------------------


def shop_names(corpus_dir: Path) -> list[str]:
    return sorted(p.stem for p in (corpus_dir / "shops").glob("*.yaml"))


def merge_shop(base: dict[str, Any], raw: dict[str, Any], name: str) -> Shop:
    """A shop profile: the default shop's values with the named shop's laid over them."""
    merged = {**base, **raw, "vars": {**(base.get("vars") or {}), **(raw.get("vars") or {})}}
    merged.setdefault("name", name)
    return Shop.model_validate(merged)


def load_shop(corpus_dir: Path, name: str = "default") -> Shop:
    """One shop read from its files (tools and tests; drafting reads the workspace snapshot)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name) or not (corpus_dir / "shops" / f"{name}.yaml").is_file():
        known = ", ".join(shop_names(corpus_dir)) or "none"
        shown = name if len(name) <= 64 else name[:64] + "…"
        raise UnknownShopError(f"unknown shop {shown!r}: known shops are {known}")
    raws = []
    for stem in ("default", name):
        path = corpus_dir / "shops" / f"{stem}.yaml"
        raw = read_yaml(path)
        if not isinstance(raw, dict):
            raise CorpusError(f"{path}: a shop file must be a mapping")
        raws.append(raw)
    try:
        return merge_shop(raws[0], raws[1], name)
    except ValidationError as exc:
        raise CorpusError(f"{corpus_dir / 'shops' / (name + '.yaml')}: {next(field_errors(exc))}") from None


def variables(text: str) -> set[str]:
    return set(VARIABLE.findall(text))


def fill(text: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` with the shop's value; unknown names stay as written."""
    return VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), text)
