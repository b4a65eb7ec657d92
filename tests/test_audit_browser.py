"""The audit report renders in Chromium: tables, highlighted spans, no request leaves the page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.cli.audit_cmd import audit
from agent.config import REPO_ROOT
from agent.guardrails import load_rules

CHROMIUM = Path("/usr/bin/chromium")
LOG = Path(__file__).parent / "data" / "audit_log.jsonl"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (make browser-deps)")
def test_the_audit_report_renders_in_chromium(tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    page_path = tmp_path / "audit.html"
    rules = load_rules(REPO_ROOT / "corpus" / "tone_rules.yaml")
    summary, _ = audit(LOG, rules=rules, workers=1, progress=False, html=page_path)
    requested: list[str] = []
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            page.on("request", lambda request: requested.append(request.url))
            page.goto(page_path.as_uri())
            assert page.locator("#by-rule tr").count() == len(summary.by_rule) + 1
            assert page.locator("#by-agent tr").count() == len(summary.by_agent) + 1
            assert page.locator(".example").count() == summary.with_findings
            marks = page.locator("mark")
            assert marks.count() >= sum(summary.by_rule.values())
            danshi = page.locator("mark.contains_danshi").first
            assert danshi.is_visible() and danshi.inner_text() == "但是"
            colour = danshi.evaluate("el => getComputedStyle(el).backgroundColor")
            assert colour not in ("rgba(0, 0, 0, 0)", "transparent")
            shot = tmp_path / "audit.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert requested == [page_path.as_uri()]
    assert shot.stat().st_size > 10_000
    keep = REPO_ROOT / ".kefu"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, keep / "audit-report-screenshot.png")  # for humans; .kefu/ is git-ignored
