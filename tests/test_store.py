"""The SQLite store: migrations, API keys, drafts and feedback, redaction before storage, stats."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import store as store_module
from agent.cli import main
from agent.config import get_settings
from agent.errors import InputError, NotFoundError
from agent.evaluation.dataset import GoldenCase
from agent.store import (
    ConflictError,
    Labels,
    Store,
    StoreLike,
    export_golden,
    feedback_stats,
    golden_candidates,
    memory_store,
    migrations,
    open_store,
)
from agent.types import Citation, Draft, Finding, RuleId

PHONE = "13812345678"
ID_CARD = "11010519491231002X"
PASSWORD = "abc123"
PII_MESSAGE = f"我的手机{PHONE}，身份证{ID_CARD}，密码是{PASSWORD}，帮我查下订单"


@pytest.fixture
def store() -> Iterator[Store]:
    opened = open_store(get_settings())
    yield opened
    opened.close()


def make_draft(
    text: str = "您好，已为您查询", cited: tuple[str, ...] = ("shipping.courier",), rules: tuple[RuleId, ...] = ()
) -> Draft:
    return Draft(
        text=text,
        is_refusal=bool(rules),
        status="needs_review" if rules else "ok",
        citations=[Citation(id=sid, category=sid.split(".")[0], score=0.5) for sid in cited],
        findings=[Finding(rule=r, start=0, end=1, text=text[:1], message="test finding") for r in rules],
        backend="script",
    )


def all_text(path: Path) -> str:
    """Every value of every table, and the raw bytes of the database and its WAL, as one string."""
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    values = [str(v) for t in tables for row in conn.execute(f"SELECT * FROM {t}") for v in row]
    conn.close()
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    return "\n".join(values) + raw.decode("utf-8", errors="ignore")


def test_migrations_are_recorded_once_in_order(store: Store) -> None:
    names = [fn.__name__ for fn in store_module.MIGRATIONS]
    assert store.migrations() == names
    assert store.migrate() == []
    assert store.conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_old_store_gets_only_the_migrations_it_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    first, *later = store_module.MIGRATIONS
    monkeypatch.setattr(migrations, "MIGRATIONS", [first])
    old = open_store(get_settings())
    assert old.migrations() == [first.__name__]
    old.close()
    monkeypatch.setattr(migrations, "MIGRATIONS", [first, *later])
    new = open_store(get_settings())
    assert new.migrations() == [fn.__name__ for fn in (first, *later)]
    new.close()


def test_keys_verify_and_revoke(store: Store) -> None:
    key = store.create_key("tool-a")
    assert store.verify_key(key).status == "ok"
    assert store.verify_key(key).name == "tool-a"
    assert store.verify_key(key[:-1] + ("A" if key[-1] != "A" else "B")).status == "unknown"
    assert store.verify_key("not-a-key").status == "unknown"
    store.revoke_key("tool-a")
    assert store.verify_key(key).status == "revoked"
    again = store.create_key("tool-a")
    assert store.verify_key(again).status == "ok"
    assert store.verify_key(key).status == "revoked"
    assert key not in all_text(store.path)


def test_key_names_are_checked(store: Store) -> None:
    store.create_key("tool-a")
    with pytest.raises(InputError, match="active key named"):
        store.create_key("tool-a")
    with pytest.raises(InputError, match="key name"):
        store.create_key("bad name!")
    with pytest.raises(NotFoundError):
        store.revoke_key("nobody")


def test_personal_data_is_masked_before_storage(store: Store) -> None:
    draft_id = store.record_draft(make_draft(f"已记录您的手机{PHONE}"), PII_MESSAGE, "default")
    store.record_feedback(draft_id, "edited", final_text=f"已改，身份证{ID_CARD}")
    store.record_feedback(draft_id, "rejected", reason=f"客户说密码是{PASSWORD}", revise=True)
    stored = all_text(store.path)
    for secret in (PHONE, ID_CARD, PASSWORD):
        assert secret not in stored
    assert "帮我查下订单" in store.get_draft(draft_id)["query"]


def test_feedback_needs_a_known_draft_and_the_right_fields(store: Store) -> None:
    draft_id = store.record_draft(make_draft(), "什么时候发货", "default")
    with pytest.raises(NotFoundError):
        store.record_feedback("nope", "accepted")
    with pytest.raises(InputError, match="final_text"):
        store.record_feedback(draft_id, "edited")
    with pytest.raises(InputError, match="reason"):
        store.record_feedback(draft_id, "rejected", reason="  ")
    record = store.record_feedback(draft_id, "accepted")
    assert [f["id"] for f in store.feedback_for(draft_id)] == [record.id]


def _served(store: Store) -> dict[str, str]:
    ids = {
        "accepted": store.record_draft(make_draft(cited=("shipping.courier",)), "用什么快递", "default"),
        "edited": store.record_draft(
            make_draft(cited=("shipping.courier", "bargaining.discount"), rules=("contains_danshi",)),
            "能便宜点吗，用什么快递",
            "default",
        ),
        "rejected": store.record_draft(make_draft(cited=("bargaining.discount",)), "便宜点", "tmall_flagship"),
        "unseen": store.record_draft(make_draft(cited=()), "在吗", "default"),
    }
    store.record_feedback(ids["accepted"], "accepted")
    store.record_feedback(ids["edited"], "accepted")
    store.record_feedback(ids["edited"], "edited", final_text="亲，满300减20哦", revise=True)  # the latest counts
    store.record_feedback(ids["rejected"], "rejected", reason="wrong shop")
    return ids


def test_stats_per_script_and_rule(store: Store) -> None:
    _served(store)
    stats = feedback_stats(store)
    assert stats["total"] == {
        "key": "all",
        "drafts": 4,
        "reviewed": 3,
        "accepted": 1,
        "edited": 1,
        "rejected": 1,
        "acceptance_rate": round(1 / 3, 4),
        "edit_rate": round(1 / 3, 4),
    }
    scripts = {row["key"]: row for row in stats["scripts"]}
    assert (scripts["shipping.courier"]["accepted"], scripts["shipping.courier"]["edited"]) == (1, 1)
    assert scripts["shipping.courier"]["acceptance_rate"] == 0.5
    assert (scripts["bargaining.discount"]["edited"], scripts["bargaining.discount"]["rejected"]) == (1, 1)
    assert scripts[store_module.NO_SCRIPT]["reviewed"] == 0
    assert scripts[store_module.NO_SCRIPT]["acceptance_rate"] is None
    rules = {row["key"]: row for row in stats["rules"]}
    assert rules["contains_danshi"]["edit_rate"] == 1.0
    assert rules[store_module.NO_FINDING]["drafts"] == 3


def test_edited_drafts_become_golden_candidates(store: Store) -> None:
    ids = _served(store)
    (case,) = golden_candidates(store)
    assert case["id"] == f"feedback-{ids['edited'][:12]}"
    assert case["message"] == "能便宜点吗，用什么快递"
    assert case["golden"] == "亲，满300减20哦"
    # the labels are the agent's text's, not kefu's: kefu's draft was a refusal citing two scripts
    assert (case["expected_ids"], case["category"], case["expect_refusal"]) == ([], "", False)
    assert "kefu cited: shipping.courier, bargaining.discount" in case["note"]
    assert (case["must_include"], case["must_not"], case["source"]) == ([], [], "feedback")
    assert case["shop"] == "default" and "kefu drafted: " in case["note"]
    assert GoldenCase.model_validate(case).golden == case["golden"]  # loads as a golden case as exported


def test_two_stores_on_one_file_write_concurrently(store: Store) -> None:
    """Two processes' worth of connections: every feedback write lands, none fails on a lock."""
    draft_id = store.record_draft(make_draft(), "什么时候发货", "default")
    other = open_store(get_settings())
    errors: list[BaseException] = []

    def write(target: Store) -> None:
        try:
            for _ in range(40):
                target.record_feedback(draft_id, "accepted", revise=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s,)) for s in (store, other, store, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert errors == []
    assert len(store.feedback_for(draft_id)) == 160


def test_cli_keys_and_feedback(store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["keys", "create", "tool-b"]) == 0
    key = capsys.readouterr().out.strip()
    assert store.verify_key(key).name == "tool-b"
    assert main(["keys", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["name"] for k in listed] == ["tool-b"]
    assert key.split("_", 2)[2] not in json.dumps(listed)  # the secret may itself contain "_"
    assert main(["keys", "revoke", "tool-b"]) == 0
    assert store.verify_key(key).status == "revoked"
    assert main(["keys", "revoke", "tool-b"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["keys", "create", "boss", "--role", "supervisor"]) == 0
    assert store.verify_key(capsys.readouterr().out.strip()).role == "supervisor"
    assert main(["keys", "create", "x", "--role", "admin"]) != 0
    capsys.readouterr()

    _served(store)
    assert main(["feedback", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == feedback_stats(store)
    assert main(["feedback", "stats"]) == 0
    assert "shipping.courier" in capsys.readouterr().out
    out = tmp_path / "golden.jsonl"
    assert main(["feedback", "export", "--golden", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines == golden_candidates(store)


# --- issue 13: the file is private; issue 14: feedback rules and roles ------------------


def test_the_store_file_and_its_dir_are_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    settings = get_settings().model_copy(update={"data_dir": data})
    opened = open_store(settings)
    opened.record_draft(make_draft(), "什么时候发货", "default")
    for path in data.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert data.stat().st_mode & 0o777 == 0o700
    opened.close()
    (data / "kefu.db").chmod(0o644)
    data.chmod(0o755)
    open_store(settings).close()  # an existing world-readable store is tightened
    assert (data / "kefu.db").stat().st_mode & 0o777 == 0o600
    assert data.stat().st_mode & 0o777 == 0o700


def test_feedback_only_from_the_key_that_was_served_the_draft(store: Store) -> None:
    draft_id = store.record_draft(make_draft(), "什么时候发货", "default", key_name="agent-a")
    with pytest.raises(NotFoundError):
        store.record_feedback(draft_id, "accepted", key_name="agent-b")
    assert store.record_feedback(draft_id, "accepted", key_name="agent-a").revision == 1


def test_feedback_once_then_revisions_never_overwrites(store: Store) -> None:
    draft_id = store.record_draft(make_draft(), "什么时候发货", "default", key_name="agent-a")
    first = store.record_feedback(draft_id, "accepted", key_name="agent-a")
    with pytest.raises(ConflictError, match="revise"):
        store.record_feedback(draft_id, "rejected", reason="wrong", key_name="agent-a")
    second = store.record_feedback(draft_id, "edited", final_text="您好", key_name="agent-a", revise=True)
    assert (first.revision, second.revision) == (1, 2)
    rows = store.feedback_for(draft_id)
    assert [(r["revision"], r["action"]) for r in rows] == [(1, "accepted"), (2, "edited")]
    assert feedback_stats(store)["total"]["edited"] == 1  # the latest revision counts


def test_a_retry_with_the_same_idempotency_key_is_not_a_duplicate(store: Store) -> None:
    draft_id = store.record_draft(make_draft(), "什么时候发货", "default", key_name="agent-a")
    other = store.record_draft(make_draft(), "用什么快递", "default", key_name="agent-a")
    first = store.record_feedback(draft_id, "accepted", key_name="agent-a", idempotency_key="try-1")
    again = store.record_feedback(draft_id, "accepted", key_name="agent-a", idempotency_key="try-1")
    assert (again.id, again.replayed, first.replayed) == (first.id, True, False)
    assert len(store.feedback_for(draft_id)) == 1
    with pytest.raises(ConflictError, match="idempotency"):
        store.record_feedback(other, "accepted", key_name="agent-a", idempotency_key="try-1")


def test_keys_carry_a_role(store: Store) -> None:
    agent = store.create_key("agent-a")
    boss = store.create_key("boss", role="supervisor")
    assert (store.verify_key(agent).role, store.verify_key(boss).role) == ("agent", "supervisor")
    assert {k.name: k.role for k in store.list_keys()} == {"agent-a": "agent", "boss": "supervisor"}
    with pytest.raises(InputError, match="role"):
        store.create_key("x", role="admin")


def test_an_edit_that_breaks_a_tone_rule_is_not_exported(store: Store) -> None:
    good = store.record_draft(make_draft(), "能便宜点吗", "default")
    bad = store.record_draft(make_draft(), "能便宜点吗", "default")
    store.record_feedback(good, "edited", final_text="非常抱歉，价格是统一的，满300减20哦")
    store.record_feedback(bad, "edited", final_text="亲亲，不讲价，但是可以送小礼物")
    export = export_golden(store)
    assert [c["golden"] for c in export.cases] == ["非常抱歉，价格是统一的，满300减20哦"]
    assert export.cases[0]["expect_refusal"] is True  # read from the agent's text
    assert export.failed_guardrail == [bad]
    labelled = golden_candidates(store, lambda message, text: Labels(True, False, "bargaining", ["bargaining.x"]))
    assert {c["category"] for c in labelled} == {"bargaining"}


def test_the_fake_is_the_real_store_in_memory(tmp_path: Path) -> None:
    fake: StoreLike = memory_store(lambda text: text.replace("13812345678", "【手机号】"))
    key = fake.create_key("agent-a")
    assert fake.verify_key(key).name == "agent-a"
    draft_id = fake.record_draft(make_draft(), "手机13812345678", "default", key_name="agent-a")
    assert fake.get_draft(draft_id)["query"] == "手机【手机号】"
    assert fake.record_feedback(draft_id, "accepted", key_name="agent-a").revision == 1
    fake.close()
    assert list(tmp_path.iterdir()) == []


def test_key_by_id_and_the_review_queue(store: Store) -> None:
    key = store.create_key("boss", role="supervisor")
    key_id = key.split("_")[1]
    assert store.key_by_id(key_id) == store.verify_key(key)
    assert store.key_by_id("nope") is None
    ids = _served(store)
    flagged = store.record_draft(make_draft(rules=("contains_danshi",)), "便宜点", "tmall_flagship")
    queue = store.review_queue()
    assert {row["draft_id"] for row in queue} == {ids["edited"], flagged}  # needs_review or edited
    assert [r["draft_id"] for r in store.review_queue(shop="tmall_flagship")] == [flagged]
    assert {r["draft_id"] for r in store.review_queue(rule="contains_danshi")} == {ids["edited"], flagged}
    assert store.review_queue(rule="over_intimacy") == []
    assert store.review_queue(since="2999-01-01") == []
    edited = next(r for r in queue if r["draft_id"] == ids["edited"])
    assert (edited["action"], edited["revision"], edited["final_text"]) == ("edited", 2, "亲，满300减20哦")
    assert {"created_at", "status"} <= set(store.outcomes()[0])
