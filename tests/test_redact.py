"""Masking personal data: the table of personal-data cases and clean shop messages, and the edges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.config import REPO_ROOT
from agent.redact import Redactor, id_card, load_redactor, luhn, matching_form

TABLE = Path(__file__).parent / "data" / "pii_cases.jsonl"
CASES: list[dict[str, Any]] = [json.loads(line) for line in TABLE.read_text(encoding="utf-8").splitlines() if line]
PERSONAL = [c for c in CASES if c["kinds"]]
CLEAN = [c for c in CASES if not c["kinds"]]
PLACEHOLDERS = {"【手机号】", "【身份证号】", "【银行卡】", "【邮箱】", "【验证码】", "【密码】", "【地址】"}


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return load_redactor(REPO_ROOT / "corpus")


def test_the_table_is_big_enough() -> None:
    assert len(PERSONAL) >= 60 and len(CLEAN) >= 60
    kinds = {k for c in PERSONAL for k in c["kinds"]}
    assert kinds == {"phone", "id_card", "bank_card", "email", "code", "password", "address"}


@pytest.mark.parametrize("case", PERSONAL, ids=[c["text"][:24] for c in PERSONAL])
def test_every_value_is_masked_and_only_the_value(redactor: Redactor, case: dict[str, Any]) -> None:
    masked = redactor.redact(case["text"])
    rest = case["text"]
    for secret in case["secrets"]:
        assert secret not in masked, masked
        rest = rest.replace(secret, "")
    # only the values are replaced: the words around them stay as written
    for placeholder in PLACEHOLDERS:
        masked = masked.replace(placeholder, "")
    assert masked == rest
    assert sorted(redactor.found(case["text"])) == sorted(case["kinds"])


@pytest.mark.parametrize("case", CLEAN, ids=[c["text"][:24] for c in CLEAN])
def test_clean_shop_messages_are_left_alone(redactor: Redactor, case: dict[str, Any]) -> None:
    assert redactor.redact(case["text"]) == case["text"]
    assert redactor.found(case["text"]) == []


def test_placeholders_are_typed(redactor: Redactor) -> None:
    text = "手机13812345678，邮箱a.b@qq.com，密码 是 Qwe 789012"
    assert redactor.redact(text) == "手机【手机号】，邮箱【邮箱】，密码 是 【密码】"
    assert {kind.placeholder for kind in redactor.patterns.values()} == PLACEHOLDERS


def test_spans_point_at_the_original_text(redactor: Redactor) -> None:
    text = "电话１３９\u200b００１２３４５６。"
    (span,) = redactor.spans(text)
    assert text[span.start : span.end] == "１３９\u200b００１２３４５６"
    assert span.kind == "phone"


def test_matching_form_folds_width_and_script() -> None:
    folded, index = matching_form("密碼：１２３\u200bＡ")
    assert folded == "密码:123A"
    assert index == [0, 1, 2, 3, 4, 5, 7]
    assert matching_form("plain") == ("plain", None)


def test_checksums() -> None:
    assert id_card("11010519491231002X") and id_card("11010519491231002x")
    assert not id_card("110105194912310021") and not id_card("110105194913310025")
    assert luhn("6222021234567890128") and not luhn("6222021234567890129")


def test_an_order_number_that_passes_luhn_is_not_a_card(redactor: Redactor) -> None:
    number = "6222021234567890128"  # Luhn-valid, but named an order number
    assert redactor.redact(f"订单号{number}") == f"订单号{number}"
    assert redactor.redact(f"卡号{number}") == "卡号【银行卡】"


def test_empty_and_long_texts(redactor: Redactor) -> None:
    assert redactor.redact("") == ""
    long = "这件衣服什么时候发货，" * 800 + "手机13812345678"
    assert redactor.redact(long).endswith("手机【手机号】")


def test_mask_gives_the_text_and_the_kinds_in_one_pass(redactor: Redactor) -> None:
    text = "密码 是 Qwe 789012，手机13812345678"
    assert redactor.mask(text) == (redactor.redact(text), ["phone", "password"])
    assert redactor.mask("") == ("", [])
