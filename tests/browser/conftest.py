"""Fixtures for the browser tests: one workbench server per session and Debian's Chromium.

Chromium runs headless from /usr/bin/chromium (``make browser-deps``; never ``playwright install``)
and may only reach the test server: any other request is aborted and recorded, and a test that
caused one fails. Screenshots go to ``KEFU_ARTIFACTS`` (default ``tmp/artifacts``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import REPO_ROOT
from tests.browser.app import Bench, Server, build

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTHS = {"desktop": (1280, 900), "mobile": (390, 844)}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (make browser-deps)")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(os.environ.get("KEFU_ARTIFACTS", REPO_ROOT / "tmp" / "artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return build(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="session")
def server(bench: Bench) -> Iterator[Server]:
    running = Server(bench.app).start()
    yield running
    running.stop()


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    """One browser for this package, closed when its tests end: a sync Playwright left running holds an
    asyncio loop in the main thread, and every later sync_playwright() in the session then fails."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (make browser-deps)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # a loaded 2-core CI box: the debounced check can take a while
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


class Outside:
    """Requests the page tried to send anywhere but the test server."""

    def __init__(self) -> None:
        self.urls: list[str] = []


@pytest.fixture
def outside() -> Iterator[Outside]:
    seen = Outside()
    yield seen
    assert not seen.urls, f"the page tried to reach the network: {seen.urls}"


def new_page(chromium: Any, server: Server, outside: Outside, width: str = "desktop") -> Any:
    """A page in a fresh context (no cookies) that can reach only ``server``."""
    w, h = WIDTHS[width]
    context = chromium.new_context(viewport={"width": w, "height": h}, locale="zh-CN")
    context.set_default_timeout(20_000)

    def guard(route: Any) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            outside.urls.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    return context.new_page()
