"""Versioned prompt files (``prompts/NAME.vN.yaml``), loaded strictly and rendered safely.

A prompt file::

    version: draft.v1              # must match the file name
    description: ...
    model: {temperature: 0.3, max_tokens: 500, response_format: json_object}
    variables: [shop_facts, scripts, customer_message, ...]
    system: |
      ... {{ shop_facts }} ...     # Jinja2, sandboxed, StrictUndefined
    user: |
      ...

An unknown field (``sytem:``), a template using a variable the file does not declare, and a
render missing a declared variable are :class:`PromptError`\\ s naming the file and the field or
variable. Values are inserted as data: text a customer wrote is never parsed as a template.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import PromptError

_NAME = re.compile(r"^[A-Za-z0-9_-]+\.v[0-9]+$")
_OPEN, _CLOSE = "<\uff1c\ufe64", ">\uff1e\ufe65"  # ASCII, full-width and small angle brackets
_QUOTE_OPEN, _QUOTE_CLOSE = "\u2039", "\u203a"
_TAG = re.compile(rf"[{_OPEN}](\s*/?\s*[A-Za-z_][^{_OPEN}{_CLOSE}\n]*)([{_CLOSE}]?)")


class ModelParams(BaseModel):
    """Sampling parameters sent with every call of this prompt."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0)
    seed: int | None = None
    response_format: Literal["json_object", "text"] = "json_object"

    def call_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of a chat call (only those the file sets)."""
        kwargs: dict[str, Any] = self.model_dump(exclude_none=True, exclude={"response_format"})
        if self.response_format == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        return kwargs


class PromptFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    description: str = ""
    model: ModelParams = Field(default_factory=ModelParams)
    variables: list[str] = Field(default_factory=list)
    system: str
    user: str


@dataclass(frozen=True)
class Rendered:
    """A prompt filled in: the system and user messages of one chat call."""

    system: str
    user: str

    def contents(self) -> tuple[str, str]:
        return self.system, self.user


@dataclass(frozen=True)
class Prompt:
    """A loaded prompt file: its spec, compiled templates and the sha256 of its bytes."""

    name: str
    path: Path
    sha256: str
    spec: PromptFile
    templates: dict[str, Template]

    @property
    def params(self) -> ModelParams:
        return self.spec.model

    def render(self, values: dict[str, Any]) -> Rendered:
        """Fill both templates; every declared variable must be given."""
        missing = [v for v in self.spec.variables if v not in values]
        if missing:
            raise PromptError(f"{self.path}: variable {missing[0]!r} was not given when rendering {self.name}")
        context = {v: values[v] for v in self.spec.variables}
        return Rendered(self._render("system", context), self._render("user", context))

    def _render(self, part: str, context: dict[str, Any]) -> str:
        try:
            return self.templates[part].render(context)
        except TemplateError as exc:
            raise PromptError(f"{self.path}: field {part}: {exc.message or type(exc).__name__}") from None


def neutralise_tags(text: str) -> str:
    """Turn anything shaped like a markup tag into look-alike text, so data cannot close a delimiter.

    ``</customer_message>`` becomes ``\u2039/customer_message\u203a`` (single angle quotation marks):
    the reader still sees what was written, but no tag the prompt uses can be opened or closed
    from inside the data. Full-width and small angle brackets are treated the same way.
    """
    return _TAG.sub(_quoted, text)


def _quoted(match: re.Match[str]) -> str:
    return _QUOTE_OPEN + match.group(1) + (_QUOTE_CLOSE if match.group(2) else "")


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_ENV = _environment()


def _field_problem(path: Path, exc: ValidationError) -> PromptError:
    """The most telling problem first: an unknown field (a typo) explains the missing one."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    error = errors[0]
    field = ".".join(str(p) for p in error["loc"]) or "(root)"
    if error["type"] == "extra_forbidden":
        known = _known(error["loc"])
        close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(known)}"
        return PromptError(f"{path}: unknown field {field!r} ({hint})")
    if error["type"] == "missing":
        return PromptError(f"{path}: missing field {field!r}")
    return PromptError(f"{path}: field {field!r}: {error['msg']}")


def _known(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = ModelParams if len(loc) > 1 and loc[0] == "model" else PromptFile
    return list(model.model_fields)


def _compile(path: Path, part: str, source: str, declared: list[str]) -> Template:
    try:
        used = meta.find_undeclared_variables(_ENV.parse(source))
        template = _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise PromptError(f"{path}: field {part}: line {exc.lineno}: {exc.message}") from None
    unknown = sorted(used - set(declared))
    if unknown:
        raise PromptError(f"{path}: field {part}: variable {unknown[0]!r} is not declared in 'variables'")
    return template


def parse_prompt(name: str, path: Path, data: bytes) -> Prompt:
    """Validate a prompt file's bytes and compile its templates."""
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise PromptError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise PromptError(f"{path}{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(raw, dict):
        raise PromptError(f"{path}: a prompt file must be a mapping of fields")
    try:
        spec = PromptFile.model_validate(raw)
    except ValidationError as exc:
        raise _field_problem(path, exc) from None
    if spec.version != name:
        raise PromptError(f"{path}: field 'version': {spec.version!r} does not match the file name {name!r}")
    templates = {part: _compile(path, part, getattr(spec, part), spec.variables) for part in ("system", "user")}
    return Prompt(name, path, hashlib.sha256(data).hexdigest(), spec, templates)


_cache: dict[Path, tuple[tuple[int, int], Prompt]] = {}
_lock = threading.Lock()


def prompt_path(name: str, prompts_dir: Path) -> Path:
    if not _NAME.fullmatch(name):
        raise PromptError(f"invalid prompt name {name!r}: expected NAME.vN, e.g. draft.v1")
    path = prompts_dir / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in prompts_dir.glob("*.yaml"))) or "none"
        raise PromptError(f"{path}: no such prompt file (prompts in {prompts_dir}: {known})")
    return path


def load_prompt(name: str, prompts_dir: Path) -> Prompt:
    """The prompt ``name`` (e.g. ``draft.v1``) from ``prompts_dir``, re-read only when the file changed."""
    path = prompt_path(name, prompts_dir)
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _lock:
        cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    prompt = parse_prompt(name, path, path.read_bytes())
    with _lock:
        _cache[path] = (stamp, prompt)
    return prompt


def prompt_hash(name: str, prompts_dir: Path) -> str:
    """sha256 of the prompt file's bytes: the eval harness records it with every run."""
    return load_prompt(name, prompts_dir).sha256
