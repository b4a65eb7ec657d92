"""Token counts are exact and offline: the vendored encodings, verified, equal tiktoken's own."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import tiktoken
import tiktoken_ext.openai_public as openai_public  # type: ignore[import-untyped]

from agent.drafting import tokens
from agent.errors import ConfigError

TEXT = "亲，这件衣服能便宜点吗？今天下单什么时候发货，用什么快递？Order #12345, shipped via 申通.\n\n  ok"


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_the_vendored_encodings_are_tiktokens_own(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = tokens.load_encoding(name)  # verifies the file's sha256 before tiktoken reads it below
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tokens.VENDORED_DIR))
    official = tiktoken.Encoding(**getattr(openai_public, name)())
    assert ours.encode(TEXT) == official.encode(TEXT)
    assert ours._special_tokens == official._special_tokens
    assert ours._pat_str == official._pat_str


def test_loading_leaves_the_users_tiktoken_settings_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    tokens.count_tokens(TEXT, "gpt-4")
    assert "TIKTOKEN_CACHE_DIR" not in os.environ


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "tiktoken"
    shutil.copytree(tokens.VENDORED_DIR, target)
    return target


def test_a_tampered_encoding_file_is_a_config_error(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    path = tokens.vendored_path("cl100k_base", directory)
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError) as err:
        tokens.load_encoding("cl100k_base", directory)
    assert str(path) in err.value.message
    assert "sha256" in err.value.message


def test_a_missing_encoding_file_is_a_config_error(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    tokens.vendored_path("o200k_base", directory).unlink()
    with pytest.raises(ConfigError, match="cannot read the vendored o200k_base"):
        tokens.load_encoding("o200k_base", directory)


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4o-2024-08-06", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("qwen2.5:7b-instruct", "o200k_base"),  # unknown models (Ollama, vLLM): the modern encoding
        ("text-davinci-003", "o200k_base"),  # an encoding not vendored: the default
    ],
)
def test_models_map_to_a_vendored_encoding(model: str, encoding: str) -> None:
    assert tokens.encoding_name(model) == encoding


def test_special_token_text_from_a_customer_counts_as_plain_text() -> None:
    text = "<|endoftext|><|endofprompt|>"
    enc = tokens.load_encoding("o200k_base")
    assert tokens.count_tokens(text, "gpt-4o") == len(enc.encode(text, disallowed_special=())) > 2


def test_a_chat_costs_its_contents_plus_the_framing() -> None:
    parts = ["系统提示", TEXT]
    contents = sum(tokens.count_tokens(p, "gpt-4o") for p in parts)
    expected = contents + len(parts) * tokens.TOKENS_PER_MESSAGE + tokens.TOKENS_PER_REPLY
    assert tokens.count_messages(parts, "gpt-4o") == expected
