"""Issue 11, must show: in a fresh venv outside the repository, ``pip install <repo>`` (not editable),
``kefu init /tmp/shop`` and ``cd /tmp/shop && kefu draft "能便宜点吗"`` drafts offline.

Nothing is downloaded: the wheel is built with the dev environment's setuptools (no build
isolation), and the fresh venv sees the dev environment's installed dependencies through a
``.pth`` line, so only kefu itself is installed into it, from the wheel. Where the machine allows
it (root, ``unshare``), kefu runs in a network namespace with no network at all.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from agent.config import REPO_ROOT

pytestmark = pytest.mark.slow

TIMEOUT_S = 240


def _setuptools_builds_this_project() -> bool:
    try:
        major = int(importlib.metadata.version("setuptools").split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        return False
    return major >= 77  # pyproject.toml's build-system requirement (PEP 639 licence fields)


def _offline_prefix() -> list[str]:
    """``unshare -n`` (a namespace without network) when it works here, else nothing."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    try:
        ok = subprocess.run([unshare, "-n", "true"], capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [unshare, "-n"] if ok else []


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def _source_copy(target: Path) -> Path:
    """What ``pip install <repo>`` reads: the project files, with links inside the tree kept as links."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO_ROOT / name, target / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".kefu")
    for folder in ("agent", "corpus", "prompts"):
        shutil.copytree(REPO_ROOT / folder, target / folder, symlinks=True, ignore=skip)
    return target


@pytest.mark.skipif(
    not _setuptools_builds_this_project(),
    reason="building offline needs setuptools>=77 in the dev environment (the dev extra of pyproject.toml)",
)
def test_a_fresh_venv_installs_kefu_inits_a_shop_and_drafts_offline(tmp_path: Path) -> None:
    src = _source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    built = _run(
        [*pip_wheel, "-w", str(dist), str(src)],
        tmp_path,
        {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("kefu-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    default = [n for n in names if n.startswith("agent/_default/")]
    assert any(n.startswith("agent/_default/corpus/scripts/") and n.endswith(".yaml") for n in default), (
        "the wheel has no packaged default workspace (agent/_default/corpus, agent/_default/prompts)"
    )
    assert "agent/_default/prompts/draft.v1.yaml" in default
    assert "agent/_default/corpus/shops/default.yaml" in default

    venv = tmp_path / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    made = _run([base_python, "-m", "venv", "--without-pip", str(venv)], tmp_path, dict(os.environ))
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    purelib = Path(
        subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        .decode()
        .strip()
    )
    (purelib / "kefu-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    installed = _run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--force-reinstall", str(wheel)],
        tmp_path,
        {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert installed.returncode == 0, installed.stderr[-3000:]

    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    where = _run([str(python), "-c", "import agent; print(agent.__file__)"], tmp_path, env)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the installed copy, not the repository
    kefu = [*_offline_prefix(), str(venv / "bin" / "kefu")]

    shop = tmp_path / "shop"
    init = _run([*kefu, "init", str(shop)], tmp_path, env)
    assert init.returncode == 0, init.stderr
    assert (shop / "corpus" / "scripts").is_dir()
    assert (shop / "prompts" / "draft.v1.yaml").is_file()
    assert _run([*kefu, "init", str(shop)], tmp_path, env).returncode == 2  # never over a shop's own edits

    validated = _run([*kefu, "corpus", "validate"], shop, env)
    assert validated.returncode == 0, validated.stderr
    assert str(shop) in validated.stdout or "ok:" in validated.stdout

    # The shop keeps one category of its starter corpus: embedding all of them the first time
    # would cost minutes on two cores, and the draft below needs only this one.
    for path in (shop / "corpus" / "scripts").glob("*.yaml"):
        if path.name != "bargaining.yaml":
            path.unlink()
    drafted = _run([*kefu, "draft", "能便宜点吗"], shop, env)
    assert drafted.returncode == 0, drafted.stderr[-3000:]
    assert drafted.stdout.strip(), drafted.stderr
    assert "Traceback" not in drafted.stderr
    assert "backend=script" in drafted.stderr
    assert "scripts=bargaining." in drafted.stderr
    assert (shop / ".kefu").is_dir()  # the index lives in the shop's workspace
