"""Read a workspace directory into a :class:`Workspace`, every file parsed once.

Each file is parsed by the module that owns its schema; the checks that span files (variables
every shop defines, the corpus passing its own tone rules, emergency rules naming real scripts)
live in :mod:`agent.workspace.validate`, above all of them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent.context import ContextRules
from agent.corpus import collect, merge_shop
from agent.datafile import field_errors, parse, read_yaml
from agent.drafting.composer import load_style
from agent.drafting.prompts import Prompt, parse_prompt
from agent.emergency import EmergencyFile
from agent.errors import CorpusError, KefuError, UnknownShopError
from agent.guardrails.rules import RULES_FILE, RuleSet, load_rules
from agent.redact import Redactor
from agent.retrieval.split import SplitRules
from agent.types import Shop
from agent.workspace.snapshot import SHOP_NAME, Workspace

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
WATCHED = (".yaml", ".yml", ".txt", ".json")


class WorkspaceError(CorpusError):
    """A workspace that does not validate; ``problems`` names file, script and field of each."""

    code = "workspace_error"


def files(root_dirs: tuple[Path, ...]) -> list[Path]:
    """The files a snapshot is made of, in a stable order."""
    found: list[Path] = []
    for top in root_dirs:
        if not top.is_dir():
            continue
        for folder, dirs, names in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(Path(folder) / n for n in sorted(names) if n.endswith(WATCHED) and not n.startswith("."))
    return found


def stamp(root_dirs: tuple[Path, ...]) -> tuple[tuple[str, int, int], ...]:
    """Cheap change detection: path, mtime and size of every file (no reads)."""
    out = []
    for path in files(root_dirs):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


def content_version(root_dirs: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in files(root_dirs):
        digest.update(str(path.relative_to(path.anchor)).encode())
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"\0unreadable")
    return digest.hexdigest()[:16]


def _data(path: Path, model: type[M], problems: list[str], default: M | None = None) -> M | None:
    if not path.is_file():
        if default is None:
            problems.append(f"{path}: missing")
        return default
    try:
        return parse(path, model, read_yaml(path))
    except CorpusError as exc:
        problems.append(exc.message)
        return None


def _loaded(loader: Callable[[Path], T], corpus_dir: Path, problems: list[str]) -> T | None:
    try:
        return loader(corpus_dir)
    except CorpusError as exc:
        problems.extend(exc.problems or [exc.message])
        return None


def _shops(corpus_dir: Path, problems: list[str]) -> dict[str, Shop]:
    shops_dir = corpus_dir / "shops"
    raw: dict[str, dict[str, Any]] = {}
    for path in sorted(shops_dir.glob("*.yaml")):
        if not SHOP_NAME.fullmatch(path.stem):
            problems.append(f"{path}: file name: a shop name is letters, digits, '_' or '-' (at most 64)")
            continue
        try:
            loaded = read_yaml(path)
        except CorpusError as exc:
            problems.append(exc.message)
            continue
        if not isinstance(loaded, dict):
            problems.append(f"{path}: a shop file must be a mapping of fields")
            continue
        raw[path.stem] = loaded
    if "default" not in raw:
        if not any(p.startswith(str(shops_dir / "default.yaml")) for p in problems):
            problems.append(f"{shops_dir / 'default.yaml'}: missing: every shop starts from it")
        return {}
    shops: dict[str, Shop] = {}
    for name, values in raw.items():
        try:
            shops[name] = merge_shop(raw["default"], values, name)
        except ValidationError as exc:
            problems.extend(f"{shops_dir / (name + '.yaml')}: {line}" for line in field_errors(exc))
    return shops


def _tone(corpus_dir: Path, problems: list[str]) -> RuleSet | None:
    try:
        return load_rules(corpus_dir / RULES_FILE)
    except CorpusError as exc:
        problems.extend(exc.problems or [exc.message])
        return None


def _prompts(prompts_dir: Path, problems: list[str]) -> dict[str, Prompt]:
    prompts: dict[str, Prompt] = {}
    for path in sorted(prompts_dir.glob("*.yaml")):
        try:
            prompts[path.stem] = parse_prompt(path.stem, path, path.read_bytes())
        except (KefuError, OSError) as exc:
            problems.append(str(exc))
    return prompts


def read_workspace(root: Path, corpus_dir: Path, prompts_dir: Path) -> tuple[Workspace | None, list[str]]:
    """Parse every file; a snapshot whenever every part parsed, with the problems found so far.

    The caller (:func:`agent.workspace.validated.validate_workspace`) runs the cross-file checks
    on it too, so one run lists every problem, and serves it only when there is none.
    """
    problems: list[str] = []
    version = content_version((corpus_dir, prompts_dir))
    try:
        corpus, corpus_problems = collect(corpus_dir)
        problems.extend(corpus_problems)
    except CorpusError as exc:
        problems.extend(exc.problems or [exc.message])
        corpus = None
    shops = _shops(corpus_dir, problems)
    tone = _tone(corpus_dir, problems)
    style = _loaded(load_style, corpus_dir, problems)
    context = _data(corpus_dir / "context.yaml", ContextRules, problems, ContextRules())
    redactor = _data(corpus_dir / "redaction.yaml", Redactor, problems)
    retrieval_dir = corpus_dir / "retrieval"
    split = _data(retrieval_dir / "split.yaml", SplitRules, problems)
    emergency = _data(corpus_dir / "emergency.yaml", EmergencyFile, problems, EmergencyFile())
    prompts = _prompts(prompts_dir, problems)
    parts = (corpus, tone, style, context, redactor, split, emergency)
    if any(p is None for p in parts) or "default" not in shops:
        return None, problems
    assert corpus is not None and tone is not None and style is not None and context is not None
    assert redactor is not None and split is not None and emergency is not None
    workspace = Workspace(
        root=root,
        corpus_dir=corpus_dir,
        prompts_dir=prompts_dir,
        version=version,
        corpus=corpus,
        shops=shops,
        tone=tone,
        style=style,
        context=context,
        redactor=redactor,
        split=split,
        emergency=tuple(emergency.rules),
        prompts=prompts,
        retrieval_dir=retrieval_dir,
        scripts_by_id=corpus.by_id(),
    )
    return workspace, problems


def problems_of(check: Callable[[Workspace], Iterator[str]], workspace: Workspace) -> list[str]:
    try:
        return list(check(workspace))
    except (CorpusError, UnknownShopError) as exc:
        return [exc.message]
