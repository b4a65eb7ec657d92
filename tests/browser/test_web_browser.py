"""The workbench in Chromium, as an agent and a supervisor use it, with screenshots of every page.

One server for the module; the tests run in order and build on each other: the agent's edited
draft is what the supervisor reviews, and the eval run started from the page is compared with
an older one. Each page is saved at 1280 px and 390 px wide (``tmp/artifacts`` by default).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.app import Bench, Server, older_run
from tests.browser.conftest import CHROMIUM, Outside, new_page

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (make browser-deps)"),
    pytest.mark.slow,
]

MESSAGE = "亲，这件衣服能便宜点吗？"
BROKEN = "但是您也可以先领券。"
KEPT = "您也可以先领券下单。"
HANDOFFS = ("可以刻字定制吗", "衣服上能帮我刻字定制吗")


class Shared:
    draft_id: str = ""
    final_text: str = ""


def sign_in(page: Any, server: Server, key: str) -> None:
    page.goto(f"{server.url}/ui/")
    assert page.url.endswith("/ui/signin"), page.url
    page.get_by_test_id("api-key").fill(key)
    page.get_by_test_id("sign-in").click()
    page.wait_for_load_state("networkidle")
    assert key not in page.url


def shoot(
    page: Any,
    artifacts: Path,
    name: str,
    chromium: Any,
    server: Server,
    outside: Outside,
    prepare: Any = None,
    fits: bool = True,
    full: bool = True,
) -> None:
    """The page as it is at 1280 px, then the same URL (same session) at 390 px."""
    page.screenshot(path=str(artifacts / f"{name}-1280.png"), full_page=full)
    state = page.context.storage_state()
    mobile_page = new_page(chromium, server, outside, "mobile")
    mobile_page.context.add_cookies(state["cookies"])
    mobile_page.goto(page.url)
    mobile_page.wait_for_load_state("networkidle")
    if prepare is not None:
        prepare(mobile_page)
    width = mobile_page.evaluate("document.documentElement.scrollWidth")
    mobile_page.screenshot(path=str(artifacts / f"{name}-390.png"), full_page=full)
    mobile_page.context.close()
    assert width <= 400 or not fits, f"{name}: the page is {width} px wide at 390 px (horizontal scrolling)"


def draft_message(page: Any, text: str = MESSAGE) -> None:
    """Draft ``text`` and wait until the new draft (a new draft id) is on the page."""
    before = page.locator("#draft-out").get_attribute("data-draft-id") or ""
    page.get_by_test_id("message").fill(text)
    page.get_by_test_id("draft-button").click()
    page.wait_for_selector(f"#draft-out[data-draft-id]:not([data-draft-id='{before}'])")
    expect(page.get_by_test_id("draft-text")).not_to_have_value("")


def test_sign_in_page(chromium: Any, server: Server, outside: Outside, artifacts: Path) -> None:
    page = new_page(chromium, server, outside)
    page.goto(f"{server.url}/ui/signin")
    assert page.get_by_test_id("sign-in").inner_text() == "登录"
    page.get_by_test_id("api-key").fill("kefu_nothing_here")
    page.get_by_test_id("sign-in").click()
    assert "密钥无效" in page.get_by_test_id("signin-error").inner_text()
    shoot(page, artifacts, "signin", chromium, server, outside)
    page.context.close()


def test_agent_drafts_edits_and_sends(
    chromium: Any, server: Server, bench: Bench, outside: Outside, artifacts: Path
) -> None:
    page = new_page(chromium, server, outside)
    sign_in(page, server, bench.key("agent-web"))
    page.wait_for_selector("[data-testid=phrase]")
    assert page.get_by_test_id("welcome").inner_text().startswith("您好")
    page.get_by_test_id("phrase-category").select_option("shipping")
    expect(page.get_by_test_id("phrase").first).to_contain_text("快递选择")
    assert all(text.startswith("快递选择") for text in page.get_by_test_id("phrase").all_inner_texts())
    page.get_by_test_id("phrase-search").fill("顺丰")
    expect(page.get_by_test_id("phrase").first).to_contain_text("顺丰")

    draft_message(page)
    draft = page.get_by_test_id("draft-text").input_value()
    assert page.get_by_test_id("citation").count() >= 1
    assert "bargaining" in page.get_by_test_id("citation").first.get_attribute("data-id")
    assert page.get_by_test_id("finding").count() == 0
    assert page.get_by_test_id("edit-button").is_disabled()

    # an edit that breaks a tone rule: the finding appears, highlighted at its span
    page.get_by_test_id("draft-text").fill(draft + BROKEN)
    page.wait_for_selector("[data-testid=finding][data-rule=contains_danshi]")
    expect(page.locator("#draft-status")).to_have_text("需复核")
    assert page.locator("#backdrop mark").first.inner_text() == "但是"
    expect(page.get_by_test_id("fix-text")).to_contain_text("不过")  # the guardrail's safe rewrite, one click away
    shoot(page, artifacts, "agent-finding", chromium, server, outside, prepare=_mobile_finding(draft))

    # and the rewrite that fixes it: the finding goes
    page.get_by_test_id("draft-text").fill(draft + KEPT)
    expect(page.locator("#check-state")).to_have_text("未发现语气问题")
    expect(page.get_by_test_id("finding")).to_have_count(0)
    assert page.get_by_test_id("accept-button").is_disabled()
    page.get_by_test_id("edit-button").click()
    expect(page.get_by_test_id("feedback-state")).to_contain_text("修改后发送")
    assert page.get_by_test_id("edit-button").is_disabled()
    Shared.draft_id = page.locator("#draft-out").get_attribute("data-draft-id")
    Shared.final_text = draft + KEPT
    shoot(page, artifacts, "agent", chromium, server, outside, prepare=_mobile_draft)

    for question in HANDOFFS:  # questions for a colleague: the supervisor's to-do list
        draft_message(page, question)
        expect(page.get_by_test_id("citation").first).to_have_attribute("data-id", re.compile(r"^handoff\."))
    page.context.close()


def _mobile_draft(page: Any) -> None:
    draft_message(page)


def _mobile_finding(draft: str) -> Any:
    def prepare(page: Any) -> None:
        draft_message(page)
        page.get_by_test_id("draft-text").fill(page.get_by_test_id("draft-text").input_value() + BROKEN)
        page.wait_for_selector("[data-testid=finding]")

    return prepare


def test_agent_sends_as_is_and_rejects_with_a_reason(
    chromium: Any, server: Server, bench: Bench, outside: Outside
) -> None:
    page = new_page(chromium, server, outside, "mobile")
    sign_in(page, server, bench.key("agent-quick"))
    draft_message(page, "发什么快递？")
    page.get_by_test_id("accept-button").click()
    expect(page.get_by_test_id("feedback-state")).to_contain_text("直接发送")
    expect(page.get_by_test_id("reject-button")).to_be_disabled()
    page.get_by_test_id("revise-button").click()  # the agent changes their mind: a second revision
    page.get_by_test_id("draft-text").fill(page.get_by_test_id("draft-text").input_value() + "谢谢您。")
    page.get_by_test_id("edit-button").click()
    expect(page.get_by_test_id("feedback-state")).to_contain_text("第 2 版")

    draft_message(page, "什么时候发货")
    page.get_by_test_id("reject-button").click()
    expect(page.get_by_test_id("feedback-state")).to_contain_text("请先填写拒绝原因")
    page.get_by_test_id("reject-reason").fill("答非所问")
    page.get_by_test_id("reject-button").click()
    expect(page.get_by_test_id("feedback-state")).to_contain_text("已记录：拒绝")
    store = bench.store()
    try:
        actions = [[f["action"] for f in store.feedback_for(i)] for i in _served(store, "agent-quick")]
    finally:
        store.close()
    assert sorted(actions) == [["accepted", "edited"], ["rejected"]]  # revisions kept, never overwritten
    page.context.close()


def _served(store: Any, key_name: str) -> list[str]:
    rows = store.conn().execute("SELECT draft_id FROM drafts WHERE key_name = ?", (key_name,))
    return [r["draft_id"] for r in rows]


def test_agent_is_kept_off_supervisor_pages(chromium: Any, server: Server, bench: Bench, outside: Outside) -> None:
    page = new_page(chromium, server, outside)
    sign_in(page, server, bench.key("agent-curious"))
    response = page.goto(f"{server.url}/ui/review")
    assert response.status == 403
    assert "仅对主管开放" in page.get_by_test_id("denied").inner_text()
    page.context.close()


def test_supervisor_reviews_the_edit_and_makes_a_golden_case(
    chromium: Any, server: Server, bench: Bench, outside: Outside, artifacts: Path
) -> None:
    assert Shared.draft_id, "runs after the agent's test"
    page = new_page(chromium, server, outside)
    sign_in(page, server, bench.key("boss-web", "supervisor"))
    assert page.url.endswith("/ui/review")
    row = page.locator(f"[data-testid=queue-row][data-draft-id='{Shared.draft_id}']")
    assert "修改后发送" in row.inner_text()
    shoot(page, artifacts, "review", chromium, server, outside)

    row.get_by_test_id("open-draft").click()
    assert page.locator("[data-testid=diff] ins").first.inner_text() in KEPT
    assert page.get_by_test_id("draft-final").inner_text() == Shared.final_text
    shoot(page, artifacts, "draft-detail", chromium, server, outside)

    page.get_by_test_id("make-golden").click()
    assert "已保存黄金用例" in page.get_by_test_id("result").inner_text()
    saved = [json.loads(line) for line in (bench.config.data_dir / "golden_candidates.jsonl").read_text().splitlines()]
    assert saved[-1]["golden"] == Shared.final_text and saved[-1]["source"] == "feedback"
    assert saved[-1]["expect_refusal"] is True  # 非常抱歉 … the agent's text declines the discount

    page.get_by_test_id("make-proposal").click()  # the agent's wording as the script's new reply
    assert "已保存话术修改建议" in page.get_by_test_id("result").inner_text()
    assert len(list((bench.config.data_dir / "proposals").glob("*.yaml"))) == 1
    shoot(page, artifacts, "draft-proposal-saved", chromium, server, outside)

    page.goto(f"{server.url}/ui/scripts")
    assert page.get_by_test_id("script-row").count() >= 1
    shoot(page, artifacts, "scripts", chromium, server, outside)
    page.get_by_test_id("script-row").first.locator("a").click()
    assert page.get_by_test_id("edit").count() >= 1
    shoot(page, artifacts, "script-edits", chromium, server, outside)

    page.goto(f"{server.url}/ui/todo")
    group = page.get_by_test_id("todo-group").first
    assert group.get_by_test_id("todo-count").inner_text() == "2"
    group.get_by_test_id("write-script").click()
    assert "刻字" in group.locator("textarea[name=questions]").input_value()
    shoot(page, artifacts, "todo", chromium, server, outside)
    page.goto(f"{server.url}/ui/prompts")
    assert page.get_by_test_id("prompt-diff").count() == 1
    shoot(page, artifacts, "prompts", chromium, server, outside)
    page.context.close()


def test_supervisor_runs_an_eval_and_compares_two_runs(
    chromium: Any, server: Server, bench: Bench, outside: Outside, artifacts: Path
) -> None:
    page = new_page(chromium, server, outside)
    sign_in(page, server, bench.key("boss-eval", "supervisor"))
    page.goto(f"{server.url}/ui/eval")
    page.get_by_test_id("eval-start").click()
    page.wait_for_selector("[data-testid=eval-progress]", state="visible")
    page.wait_for_selector("[data-testid=run-row]", timeout=60_000)
    run_id = page.get_by_test_id("run-row").first.get_attribute("data-run-id")

    older = older_run(bench.config.runs_dir, run_id)
    page.reload()
    shoot(page, artifacts, "eval", chromium, server, outside)
    page.locator(f"[data-testid=run-row][data-run-id='{older}'] input[name=a]").check()
    page.locator(f"[data-testid=run-row][data-run-id='{run_id}'] input[name=b]").check()
    page.get_by_test_id("compare-runs").click()

    cases = page.get_by_test_id("compare-case")
    assert cases.count() >= 2
    assert cases.first.get_attribute("data-worse") == "true"  # the case that got worse comes first
    assert cases.first.get_by_test_id("case-diff").locator("ins, del").count() >= 1
    assert page.get_by_test_id("compare-metrics").locator("tr.bad").count() >= 1  # rouge_l fell past its limit
    shoot(page, artifacts, "compare", chromium, server, outside)

    page.get_by_test_id("compare-show").select_option("worse")
    page.get_by_test_id("compare-filters").locator("button").click()
    assert page.get_by_test_id("compare-case").count() == 1
    page.context.close()


def test_docs_and_redoc_render_offline(chromium: Any, server: Server, outside: Outside, artifacts: Path) -> None:
    page = new_page(chromium, server, outside)
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "kefu" in page.locator(".swagger-ui .info .title").inner_text()
    page.wait_for_selector(".opblock")
    shoot(page, artifacts, "docs", chromium, server, outside, prepare=_wait_for(".opblock"), fits=False, full=False)
    page.goto(f"{server.url}/redoc")
    page.wait_for_selector("redoc .api-content, [role=navigation]", timeout=15_000)
    assert "kefu" in page.locator("h1").first.inner_text()
    shoot(page, artifacts, "redoc", chromium, server, outside, prepare=_wait_for("h1"), fits=False, full=False)
    page.context.close()


def _wait_for(selector: str) -> Any:
    def prepare(page: Any) -> None:
        page.wait_for_selector(selector)

    return prepare
