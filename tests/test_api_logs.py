"""No personal data in logs: the masking filter on the API's and the server's loggers."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from agent.api import logs
from agent.config import REPO_ROOT
from agent.redact import load_redactor

REDACT = load_redactor(REPO_ROOT / "corpus").redact


def test_messages_arguments_and_tracebacks_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    logs.install(lambda: REDACT)
    log = logging.getLogger("kefu.api")
    with caplog.at_level(logging.INFO, logger="kefu.api"):
        log.info("customer wrote %s (%d chars)", "密码 是 Qwe 789012", 14)
        log.info("GET %s", "/v1/phrases?search=%E7%94%B5%E8%AF%9D+138+1234+5678")
        try:
            raise ValueError("card 6222021234567890128")
        except ValueError:
            log.exception("failed for 13812345678")
    text = caplog.text
    for secret in ("Qwe 789012", "5678", "6222021234567890128", "13812345678"):
        assert secret not in text
    assert "【密码】" in text and "(14 chars)" in text and "【银行卡】" in text


def test_without_a_redactor_digits_are_masked_rather_than_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Callable[[str], str]:
        raise RuntimeError("no workspace")

    logs.install(broken)
    with caplog.at_level(logging.INFO, logger="kefu.api"):
        logging.getLogger("kefu.api").info("phone %s", "138 1234 5678")
    assert "5678" not in caplog.text and "***" in caplog.text
    logs.install(lambda: REDACT)
