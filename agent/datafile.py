"""Data files supervisors edit (YAML), read into strict models and reloaded when they change.

Every problem is a :class:`CorpusError` whose message names the file, and the line (bad YAML)
or the field (a value the model refuses).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from agent.errors import CorpusError

M = TypeVar("M", bound=BaseModel)
_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in: ~10x faster


class StrictLoader(_BASE):  # type: ignore[misc]
    """The safe loader, refusing a mapping that names a key twice: YAML keeps the last one
    silently, so an entry a supervisor added above an older one of the same name was lost."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base constructor reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"found duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_LOADER: Any = StrictLoader


def regex_problem(patterns: Iterable[str]) -> str | None:
    """The first of ``patterns`` that is no regular expression, said for a validator; None if all compile."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            return f"{pattern!r} is not a regular expression ({exc})"
    return None


def read_yaml(path: Path) -> Any:
    """The parsed YAML of ``path``; a CorpusError naming the file (and line) otherwise."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise CorpusError(f"{path}{where}: invalid YAML: {problem}") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CorpusError(f"{path}: not UTF-8 text") from None


def field_errors(exc: ValidationError) -> Iterator[str]:
    """One ``field a.b: message`` line per problem pydantic found."""
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"]) or "(root)"
        yield f"field {loc}: {error['msg']}"


def parse(path: Path, model: type[M], raw: Any) -> M:
    try:
        return model.model_validate({} if raw is None else raw)
    except ValidationError as exc:
        raise CorpusError(f"{path}: {next(field_errors(exc))}") from None


@lru_cache(maxsize=64)
def _cached(path: Path, model: type[BaseModel], mtime_ns: int, size: int) -> BaseModel:
    return parse(path, model, read_yaml(path))


def load(path: Path, model: type[M], default: M | None = None) -> M:
    """``path`` read into ``model``, cached until the file changes; ``default`` when it is absent."""
    try:
        stat = path.stat()
    except OSError:
        if default is not None:
            return default
        raise CorpusError(f"{path}: missing") from None
    loaded = _cached(path, model, stat.st_mtime_ns, stat.st_size)
    assert isinstance(loaded, model)
    return loaded
