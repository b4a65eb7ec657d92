"""Exact, offline token counts with tiktoken and the encodings vendored in ``agent/_static/tiktoken``.

The vendored files are tiktoken's own (named by the sha1 of their download URL, as in tiktoken's
cache). Each is checked against its published sha256 before use and turned into an
:class:`tiktoken.Encoding` here, so nothing is downloaded and neither ``TIKTOKEN_CACHE_DIR`` nor
tiktoken's global registry is touched: a user's own tiktoken setup keeps working as before.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import tiktoken
from tiktoken.model import encoding_name_for_model

from agent.errors import ConfigError

VENDORED_DIR = Path(__file__).resolve().parent.parent / "_static" / "tiktoken"
_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
_ENDOFTEXT = "<|endoftext|>"
_ENDOFPROMPT = "<|endofprompt|>"
# Per chat message: 3 framing tokens and 1 for the role; per reply: the primed assistant turn
# (as in OpenAI's cookbook "How to count tokens with tiktoken").
TOKENS_PER_MESSAGE = 4
TOKENS_PER_REPLY = 3


@dataclass(frozen=True)
class _Spec:
    sha256: str
    pat_str: str
    special_tokens: dict[str, int]


# The split patterns and special tokens of tiktoken_ext.openai_public for these two encodings.
_SPECS: dict[str, _Spec] = {
    "cl100k_base": _Spec(
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=(
            r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
            r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
        ),
        special_tokens={
            _ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
    "o200k_base": _Spec(
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str="|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        special_tokens={_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
}
DEFAULT_ENCODING = "o200k_base"
_cache: dict[tuple[str, Path], tiktoken.Encoding] = {}
_lock = threading.Lock()


def vendored_path(name: str, directory: Path = VENDORED_DIR) -> Path:
    """Where tiktoken's cache would keep ``name``: the sha1 of its download URL."""
    return directory / hashlib.sha1(_URL.format(name).encode()).hexdigest()


def encoding_name(model: str) -> str:
    """The vendored encoding for a model: cl100k_base for gpt-3.5/gpt-4, o200k_base otherwise."""
    try:
        name = encoding_name_for_model(model)
    except KeyError:
        return DEFAULT_ENCODING
    return name if name in _SPECS else DEFAULT_ENCODING


def _ranks(data: bytes, path: Path) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(data.splitlines(), start=1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
        except ValueError:
            raise ConfigError(f"{path}: line {number} is not '<base64 token> <rank>'") from None
    return ranks


def _build(name: str, directory: Path) -> tiktoken.Encoding:
    spec = _SPECS[name]
    path = vendored_path(name, directory)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the vendored {name} encoding: {exc.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise ConfigError(
            f"{path}: sha256 {digest} does not match {spec.sha256} for {name}; "
            "restore the file from the repository (git checkout agent/_static/tiktoken)"
        )
    return tiktoken.Encoding(
        name=name, pat_str=spec.pat_str, mergeable_ranks=_ranks(data, path), special_tokens=spec.special_tokens
    )


def load_encoding(name: str, directory: Path = VENDORED_DIR) -> tiktoken.Encoding:
    """A vendored encoding by name, verified and built once per process."""
    if name not in _SPECS:
        raise ConfigError(f"no vendored tiktoken encoding {name!r}: use one of {', '.join(sorted(_SPECS))}")
    key = (name, directory)
    with _lock:
        if key not in _cache:
            _cache[key] = _build(name, directory)
        return _cache[key]


def encoding_for(model: str) -> tiktoken.Encoding:
    return load_encoding(encoding_name(model))


def count_tokens(text: str, model: str) -> int:
    """Exact tokens of ``text``; special-token strings a customer typed count as plain text."""
    return len(encoding_for(model).encode(text, disallowed_special=()))


def count_messages(contents: Iterable[str], model: str) -> int:
    """Tokens a chat request of these message contents costs, with the per-message framing."""
    enc = encoding_for(model)
    total = TOKENS_PER_REPLY
    for content in contents:
        total += TOKENS_PER_MESSAGE + len(enc.encode(content, disallowed_special=()))
    return total
