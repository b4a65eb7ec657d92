"""The web workbench without a browser: sign-in, sessions, CSRF, roles, feedback, golden cases,
proposals, queue filters, stats and offline docs, through the app (TestClient)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.web.session import COOKIE
from tests.browser.app import Bench, build

BARGAIN = "亲，这件衣服能便宜点吗？"


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return build(tmp_path_factory.mktemp("web-unit"))


@pytest.fixture(scope="module")
def app_client(bench: Bench) -> Iterator[TestClient]:
    with TestClient(bench.app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def client(app_client: TestClient) -> Iterator[TestClient]:
    app_client.cookies.clear()
    yield app_client
    app_client.cookies.clear()


def form_token(client: TestClient) -> str:
    page = client.get("/ui/signin")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def sign_in(client: TestClient, key: str) -> str:
    """Sign in with ``key``; the session's CSRF token."""
    response = client.post(
        "/ui/signin", data={"api_key": key, "csrf_token": form_token(client)}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    page = client.get("/ui/")
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def draft(client: TestClient, csrf: str, query: str = BARGAIN, shop: str = "default") -> dict[str, Any]:
    response = client.post("/ui/api/draft", json={"query": query, "shop": shop}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def feedback(client: TestClient, csrf: str, **body: Any) -> Any:
    return client.post("/ui/api/feedback", json=body, headers={"X-CSRF-Token": csrf})


# --- sign-in and sessions ---------------------------------------------------------------------


def test_sign_in_swaps_the_key_for_a_strict_httponly_cookie(client: TestClient, bench: Bench) -> None:
    key = bench.key("web-cookie")
    response = client.post(
        "/ui/signin", data={"api_key": key, "csrf_token": form_token(client)}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/ui/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(COOKIE + "="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    value = cookie.split(";")[0].split("=", 1)[1].strip('"')
    payload = value.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    secret = key.split("_", 2)[2]
    assert secret not in value and secret not in decoded
    assert json.loads(decoded)["n"] == "web-cookie"


def test_sign_in_refuses_bad_keys_and_a_missing_form_token(client: TestClient, bench: Bench) -> None:
    key = bench.key("web-refused")
    assert client.post("/ui/signin", data={"api_key": key}).status_code == 403
    assert client.post("/ui/signin", data={"api_key": key, "csrf_token": "forged"}).status_code == 403
    wrong = client.post("/ui/signin", data={"api_key": key + "x", "csrf_token": form_token(client)})
    assert wrong.status_code == 401 and "密钥无效" in wrong.text
    assert COOKIE not in client.cookies


def test_a_key_in_the_url_signs_nobody_in(client: TestClient, bench: Bench) -> None:
    key = bench.key("web-url")
    client.get(f"/ui/signin?api_key={key}")
    assert client.get("/ui/", follow_redirects=False).status_code == 303
    token = form_token(client)
    assert client.post(f"/ui/signin?api_key={key}&csrf_token={token}").status_code == 403
    assert COOKIE not in client.cookies


def test_the_key_never_reaches_a_log(client: TestClient, bench: Bench, caplog: pytest.LogCaptureFixture) -> None:
    key = bench.key("web-logs")
    with caplog.at_level(logging.DEBUG):
        csrf = sign_in(client, key)
        draft(client, csrf)
        client.post("/ui/signin", data={"api_key": key + "x", "csrf_token": form_token(client)})
    secret = key.split("_", 2)[2]
    assert all(secret not in record.getMessage() for record in caplog.records)


def test_pages_redirect_to_sign_in_and_apis_answer_401(client: TestClient) -> None:
    for path in ("/ui/", "/ui/review", "/ui/eval"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/ui/signin", path
    assert client.post("/ui/api/check", json={"draft": "您好"}).status_code == 401
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"


def test_revoking_the_key_ends_its_session(client: TestClient, bench: Bench) -> None:
    csrf = sign_in(client, bench.key("web-doomed"))
    assert client.get("/ui/").status_code == 200
    store = bench.store()
    store.revoke_key("web-doomed")
    store.close()
    assert client.get("/ui/", follow_redirects=False).status_code == 303
    assert client.post("/ui/api/check", json={"draft": "您好"}, headers={"X-CSRF-Token": csrf}).status_code == 401


def test_sign_out_needs_the_token_and_clears_the_cookie(client: TestClient, bench: Bench) -> None:
    csrf = sign_in(client, bench.key("web-leaving"))
    client.post("/ui/signout", data={"csrf_token": "wrong"})
    assert client.get("/ui/").status_code == 200
    client.post("/ui/signout", data={"csrf_token": csrf})
    assert client.get("/ui/", follow_redirects=False).status_code == 303


# --- CSRF and roles -----------------------------------------------------------------------------


def test_every_state_change_needs_the_sessions_csrf_token(client: TestClient, bench: Bench) -> None:
    csrf = sign_in(client, bench.key("web-csrf", "supervisor"))
    served = draft(client, csrf)
    posts: list[tuple[str, dict[str, Any]]] = [
        ("/ui/api/draft", {"query": BARGAIN}),
        ("/ui/api/check", {"draft": "您好"}),
        ("/ui/api/feedback", {"draft_id": served["draft_id"], "action": "accepted"}),
        ("/ui/api/eval/runs", {"suite": "web"}),
    ]
    for path, body in posts:
        assert client.post(path, json=body).status_code == 403, path
        assert client.post(path, json=body, headers={"X-CSRF-Token": "x" + csrf}).status_code == 403, path
    for path in (f"/ui/drafts/{served['draft_id']}/golden", f"/ui/drafts/{served['draft_id']}/proposal"):
        assert client.post(path, data={"id": "x"}).status_code == 403, path
    assert client.post("/ui/todo/script", data={"id": "x", "csrf_token": "nope"}).status_code == 403
    assert client.post("/ui/api/check", json={"draft": "您好"}, headers={"X-CSRF-Token": csrf}).status_code == 200


SUPERVISOR_PAGES = [
    "/ui/review",
    "/ui/scripts",
    "/ui/scripts/bargaining.ask_discount",
    "/ui/todo",
    "/ui/eval",
    "/ui/eval/compare",
    "/ui/prompts",
]


def test_agents_get_403_on_every_supervisor_page_and_call(client: TestClient, bench: Bench) -> None:
    csrf = sign_in(client, bench.key("web-agent-only"))
    served = draft(client, csrf)
    for path in [*SUPERVISOR_PAGES, f"/ui/drafts/{served['draft_id']}"]:
        response = client.get(path)
        assert response.status_code == 403 and "仅对主管开放" in response.text, path
    headers = {"X-CSRF-Token": csrf}
    assert client.post("/ui/api/eval/runs", json={"suite": "web"}, headers=headers).status_code == 403
    golden = client.post(f"/ui/drafts/{served['draft_id']}/golden", data={"csrf_token": csrf, "id": "x-1"})
    assert golden.status_code == 403
    assert 'href="/ui/review"' not in client.get("/ui/").text


def test_supervisor_pages_answer_for_a_supervisor(client: TestClient, bench: Bench) -> None:
    sign_in(client, bench.key("web-boss", "supervisor"))
    for path in SUPERVISOR_PAGES:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert response.headers["content-security-policy"].startswith("default-src 'self'")


# --- the agent's calls --------------------------------------------------------------------------


def test_a_draft_cites_titles_and_next_steps_and_check_finds_spans(client: TestClient, bench: Bench) -> None:
    csrf = sign_in(client, bench.key("web-drafter"))
    served = draft(client, csrf, "可以发顺丰吗")
    script = bench.app.state.web.workspace().scripts_by_id[served["citations"][0]["id"]]
    assert served["citations"][0]["title"] == script.title
    assert served["citations"][0]["next_steps"] == list(script.next_steps)
    text = "亲亲，但是这个不行"
    verdict = client.post("/ui/api/check", json={"draft": text}, headers={"X-CSRF-Token": csrf}).json()
    spans = {(f["rule"], text[f["start"] : f["end"]]) for f in verdict["violations"]}
    assert ("contains_danshi", "但是") in spans and ("over_intimacy", "亲亲") in spans


def test_phrases_by_category_and_search_and_the_welcome(client: TestClient, bench: Bench) -> None:
    sign_in(client, bench.key("web-phrases"))
    shipping = client.get("/ui/api/phrases", params={"category": "shipping"}).json()
    assert shipping and {p["category"] for p in shipping} == {"shipping"}
    searched = client.get("/ui/api/phrases", params={"category": "shipping", "search": "顺丰"}).json()
    assert 0 < len(searched) <= len(shipping)
    assert client.get("/ui/api/phrases", params={"category": "nope"}).status_code == 404
    assert client.get("/ui/api/welcome").json()["text"].startswith("您好")
    assert client.get("/ui/api/welcome", params={"shop": "nowhere"}).status_code == 400


def test_personal_data_is_masked_before_drafting_and_storing(client: TestClient, bench: Bench) -> None:
    csrf = sign_in(client, bench.key("web-pii"))
    served = draft(client, csrf, "我的手机号是13812345678，发什么快递？")
    store = bench.store()
    stored = store.get_draft(served["draft_id"])
    store.close()
    assert "13812345678" not in stored["query"] and "13812345678" not in served["draft"]


def test_feedback_once_per_draft_with_idempotent_retries_and_revisions(client: TestClient, bench: Bench) -> None:
    csrf = sign_in(client, bench.key("web-feedback"))
    served = draft(client, csrf)
    first = feedback(client, csrf, draft_id=served["draft_id"], action="accepted", idempotency_key="click-1")
    assert first.status_code == 201, first.text
    again = feedback(client, csrf, draft_id=served["draft_id"], action="accepted", idempotency_key="click-1")
    assert again.json()["feedback_id"] == first.json()["feedback_id"]
    other = feedback(client, csrf, draft_id=served["draft_id"], action="rejected", reason="不对", idempotency_key="c-2")
    assert other.status_code == 409
    revised = feedback(
        client, csrf, draft_id=served["draft_id"], action="edited", final_text=served["draft"] + "谢谢。", revise=True
    )
    assert revised.status_code == 201 and revised.json()["revision"] == 2
    assert feedback(client, csrf, draft_id="nope", action="accepted").status_code == 404
    assert feedback(client, csrf, draft_id=served["draft_id"], action="rejected").status_code == 422


# --- the supervisor's writes ---------------------------------------------------------------------


def edited_draft(client: TestClient, bench: Bench, name: str, final: str, query: str = BARGAIN) -> str:
    csrf = sign_in(client, bench.key(name))
    served = draft(client, csrf, query)
    response = feedback(client, csrf, draft_id=served["draft_id"], action="edited", final_text=final)
    assert response.status_code == 201, response.text
    client.cookies.clear()
    return str(served["draft_id"])


def golden_lines(bench: Bench) -> list[dict[str, Any]]:
    path = bench.config.data_dir / "golden_candidates.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_golden_case_takes_its_labels_from_the_agents_text(client: TestClient, bench: Bench) -> None:
    final = "亲，非常抱歉，本店商品都是明码实价。店里有满减活动和优惠券，下单前领取更划算。"
    draft_id = edited_draft(client, bench, "web-golden-agent", final)
    csrf = sign_in(client, bench.key("web-golden-boss", "supervisor"))
    fields = {
        "csrf_token": csrf,
        "id": "fb-bargain-1",
        "category": "bargaining",
        "expected_ids": "bargaining.ask_discount",
    }
    response = client.post(f"/ui/drafts/{draft_id}/golden", data=fields)
    assert response.status_code == 201, response.text
    case = golden_lines(bench)[-1]
    assert case["id"] == "fb-bargain-1" and case["golden"] == final and case["message"] == BARGAIN
    assert case["expect_refusal"] is True and case["source"] == "feedback"
    assert case["expected_ids"] == ["bargaining.ask_discount"]
    assert client.post(f"/ui/drafts/{draft_id}/golden", data=fields).status_code == 422  # the id exists


def test_an_edit_that_breaks_a_tone_rule_is_no_golden_case(client: TestClient, bench: Bench) -> None:
    draft_id = edited_draft(client, bench, "web-golden-bad", "亲亲，但是价格是统一的哦。")
    csrf = sign_in(client, bench.key("web-golden-boss2", "supervisor"))
    before = len(golden_lines(bench))
    response = client.post(
        f"/ui/drafts/{draft_id}/golden", data={"csrf_token": csrf, "id": "fb-bad-1", "category": "x"}
    )
    assert response.status_code == 422 and "但是" in response.text
    assert len(golden_lines(bench)) == before


def corpus_hash(bench: Bench) -> str:
    digest = hashlib.sha256()
    for path in sorted(bench.settings.corpus_dir.rglob("*.yaml")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_a_script_proposal_is_validated_against_the_workspace_before_saving(client: TestClient, bench: Bench) -> None:
    draft_id = edited_draft(client, bench, "web-proposal-agent", "亲，本店明码实价，可以领券。")
    csrf = sign_in(client, bench.key("web-proposal-boss", "supervisor"))
    before = corpus_hash(bench)
    path = f"/ui/drafts/{draft_id}/proposal"
    base = {"csrf_token": csrf, "script_id": "bargaining.ask_discount", "title": "顾客要求便宜点或打折"}
    unknown_var = client.post(path, data={**base, "reply": "亲，非常抱歉，{no_such_value}是统一的。"})
    assert unknown_var.status_code == 422 and "no_such_value" in unknown_var.text
    rude = client.post(path, data={**base, "reply": "亲亲，但是价格不能改。"})
    assert rude.status_code == 422 and "contains_danshi" in rude.text
    good = client.post(path, data={**base, "reply": "亲，非常抱歉，本店商品都是明码实价，下单前可以领取店铺优惠券。"})
    assert good.status_code == 201, good.text
    saved = sorted((bench.config.data_dir / "proposals").glob("*.yaml"))
    assert len(saved) == 1 and "bargaining.ask_discount" in saved[0].read_text()
    assert corpus_hash(bench) == before  # the live corpus is never written


def test_write_a_script_for_hand_offs(client: TestClient, bench: Bench) -> None:
    csrf = sign_in(client, bench.key("web-todo", "supervisor"))
    draft(client, csrf, "可以刻字定制吗")
    page = client.get("/ui/todo")
    assert "可以刻字定制吗" in page.text and 'data-testid="todo-count"' in page.text
    script = {"csrf_token": csrf, "id": "custom.engraving", "category": "handoff", "title": "顾客问能否刻字"}
    few = client.post("/ui/todo/script", data={**script, "questions": "能刻字吗", "reply": "亲，可以的。"})
    assert few.status_code == 422
    questions = "\n".join(
        ["能刻字吗", "可以刻字定制吗", "能帮我刻个名字吗", "刻字要加钱吗", "可以定制刻字不", "衣服上能刻字吗"]
    )
    reply = "亲，刻字定制需要同事评估后才能确认，请您把想刻的内容发给我，我马上帮您登记。"
    made = client.post("/ui/todo/script", data={**script, "questions": questions, "reply": reply})
    assert made.status_code == 201, made.text
    assert client.post("/ui/todo/script", data={**script, "id": "bargaining.ask_discount"}).status_code == 422


# --- queue, stats, compare -----------------------------------------------------------------------


def test_the_review_queue_filters(client: TestClient, bench: Bench) -> None:
    draft_id = edited_draft(client, bench, "web-queue-agent", "亲，本店默认发申通快递。", "发什么快递")
    sign_in(client, bench.key("web-queue-boss", "supervisor"))
    assert draft_id in client.get("/ui/review").text
    assert draft_id in client.get("/ui/review", params={"category": "shipping"}).text
    assert draft_id not in client.get("/ui/review", params={"category": "bargaining"}).text
    assert draft_id not in client.get("/ui/review", params={"shop": "tmall_demo"}).text
    assert draft_id not in client.get("/ui/review", params={"since": "2999-01-01"}).text
    assert draft_id in client.get("/ui/review", params={"until": "2999-01-01"}).text
    assert draft_id not in client.get("/ui/review", params={"rule": "contains_danshi"}).text


def test_script_stats_count_what_agents_did(client: TestClient, bench: Bench) -> None:
    from agent.web import queries

    store = bench.store()
    try:
        stats = {s.key: s for s in queries.script_stats(store)}
    finally:
        store.close()
    tally = stats["bargaining.ask_discount"]
    assert tally.drafts >= tally.reviewed >= tally.edited >= 1
    assert tally.edit_rate == pytest.approx(tally.edited / tally.reviewed)
    sign_in(client, bench.key("web-stats-boss", "supervisor"))
    page = client.get("/ui/scripts/bargaining.ask_discount")
    assert page.status_code == 200 and "<ins>" in page.text


def test_docs_and_redoc_load_only_this_servers_files(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith("/ui/static/vendor/") for s in sources), sources
        assert "cdn" not in page.text and "googleapis" not in page.text
        for source in sources:
            assert client.get(source).status_code == 200, source
    assert client.get("/openapi.json").status_code == 200


def test_static_files_are_served_from_the_package(client: TestClient) -> None:
    for name in ("app.css", "agent.js", "eval.js", "vendor/swagger-ui-bundle.js", "vendor/redoc.standalone.js"):
        assert client.get(f"/ui/static/{name}").status_code == 200, name
    assert client.get("/ui/static/../session.py").status_code == 404


def test_compare_puts_the_cases_that_got_worse_first(tmp_path: Path) -> None:
    from agent.evaluation.compare import compare_runs
    from agent.evaluation.runs import Run
    from agent.web.eval_routes import case_rows

    def run(values: list[float], texts: list[str]) -> Run:
        cases = [
            {
                "id": f"c{i}",
                "category": "x",
                "message": "m",
                "golden": "g",
                "draft": {"draft": t},
                "metrics": {"rouge_l": {"value": v, "reason": ""}},
            }
            for i, (v, t) in enumerate(zip(values, texts, strict=True))
        ]
        summary = {"run_id": "r", "cases": len(cases), "metrics": {"rouge_l": {"mean": sum(values) / 3}}}
        return Run(tmp_path, summary, cases)

    a = run([0.5, 0.9, 0.5], ["同", "好的回复", "一样"])
    b = run([0.6, 0.2, 0.5], ["同样", "差的回复", "一样"])
    comparison = compare_runs(a, b)
    worse: dict[str, list[Any]] = {}
    for change in comparison.worse:
        worse.setdefault(change.case_id, []).append(change)
    rows = case_rows(a, b, worse)
    assert [r["id"] for r in rows] == ["c1", "c0", "c2"]
    assert rows[0]["worse"] and not rows[1]["worse"] and rows[1]["changed"] and not rows[2]["changed"]
    assert [(p.op, p.text) for p in rows[0]["diff"]] == [("del", "好"), ("ins", "差"), ("eq", "的回复")]


def test_the_stdlib_signer_stands_in_for_itsdangerous(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    from agent.web import signing

    monkeypatch.setitem(sys.modules, "itsdangerous", None)  # the import fails: the stand-in is defined
    spec = importlib.util.spec_from_file_location("signing_fallback", signing.__file__)
    assert spec is not None and spec.loader is not None
    fallback = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fallback)
    assert fallback.URLSafeTimedSerializer.__module__ == "signing_fallback"
    signer = fallback.URLSafeTimedSerializer("secret", salt="s")
    token = signer.dumps({"k": "id", "n": "名字"})
    assert signer.loads(token, max_age=60) == {"k": "id", "n": "名字"}
    for forged in (token[:-2] + "xx", token.replace(".", "!", 1), "nonsense"):
        with pytest.raises(fallback.BadSignature):
            signer.loads(forged)
    with pytest.raises(fallback.BadSignature):
        fallback.URLSafeTimedSerializer("other", salt="s").loads(token)
    with pytest.raises(fallback.BadSignature):
        signer.loads(token, max_age=-1)


def test_prompt_versions_pair_by_family() -> None:
    from agent.web.eval_routes import default_pair

    assert default_pair(["draft.v1", "draft.v2", "draft.v10", "judge.v1"]) == ("draft.v2", "draft.v10")
    assert default_pair(["draft.v1", "judge.v1"]) == ("draft.v1", "draft.v1")
    assert default_pair([]) == ("", "")


def test_drafting_from_the_page_keeps_the_apis_rate_limit(
    client: TestClient, bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.api.limits import RateLimitedError

    class Spent:
        def __init__(self) -> None:
            self.calls: list[tuple[str, float]] = []

        def take(self, key: str, cost: float = 1.0) -> None:
            self.calls.append((key, cost))
            raise RateLimitedError("over the key's rate", 2.4)

    csrf = sign_in(client, bench.key("web-limited"))
    limiter = Spent()
    monkeypatch.setattr(bench.app.state.services, "limiter", limiter)
    response = client.post("/ui/api/draft", json={"query": "好" * 2500}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 429 and response.headers["retry-after"] == "2"
    assert limiter.calls == [("web-limited", 3.0)]


def test_golden_labels_keep_only_the_scripts_the_agents_text_still_answers_with(bench: Bench) -> None:
    from agent.corpus import fill
    from agent.web.review_routes import kept_scripts

    ws = bench.app.state.web.workspace()
    bargain, courier = ws.scripts_by_id["bargaining.ask_discount"], ws.scripts_by_id["shipping.default_courier"]
    values = ws.shop("default").vars
    both = fill(bargain.reply, values) + fill(courier.reply, values)
    row = {"shop": "default", "cited_ids": [bargain.id, courier.id], "draft": both, "final_text": both + "谢谢！"}
    assert kept_scripts(row, ws) == [bargain.id, courier.id]
    row["final_text"] = fill(courier.reply, values)  # the agent dropped the bargaining answer
    assert kept_scripts(row, ws) == [courier.id]
    row["final_text"] = "亲，稍等，我帮您问一下同事。"
    assert kept_scripts(row, ws) == []


def test_a_proposal_puts_the_shops_values_back_as_the_scripts_variables() -> None:
    from agent.web.review_routes import unfill

    values = {"gift_threshold": "280元", "sf_extra_fee": "15元", "remote_fee": "15元", "shop_name": "本店"}
    text = "本店满280元送礼品，另补15元改发顺丰。"
    own = {"gift_threshold", "sf_extra_fee"}
    assert unfill(text, values, own) == "本店满{gift_threshold}送礼品，另补{sf_extra_fee}改发顺丰。"
    assert unfill(text, values) == "{shop_name}满{gift_threshold}送礼品，另补15元改发顺丰。"  # 15元: two names
