"""No personal data in logs: every record of the API's and the server's loggers is masked.

A filter on each logger masks a record's template, each of its arguments and a traceback's text
with the current redactor before any handler sees it: an access-log line with ``?search=13812345678`` is written
as ``?search=【手机号】``. URL-encoded values are decoded for matching.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable
from urllib.parse import unquote, unquote_plus

LOGGERS = ("kefu", "kefu.api", "uvicorn", "uvicorn.error", "uvicorn.access")


class MaskingFilter(logging.Filter):
    """Replace a record's message with its masked text (the redactor is looked up per record)."""

    def __init__(self, redact: Callable[[], Callable[[str], str]]) -> None:
        super().__init__("kefu-masking")
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            redact = self.redact()
        except Exception:  # no redactor loads: mask every run of digits rather than log in clear
            redact = _digits_masked
        if isinstance(record.msg, str):
            record.msg = redact(_readable(record.msg))
        if isinstance(record.args, tuple):  # masked one by one: formatters (uvicorn's access log) unpack them
            record.args = tuple(_masked(arg, redact) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {name: _masked(arg, redact) for name, arg in record.args.items()}
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text, record.exc_info = redact(text), None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_DIGIT_RUN = re.compile(r"\d[\d\s.-]{3,}\d")


def _digits_masked(text: str) -> str:
    return _DIGIT_RUN.sub("***", text)


def _masked(arg: object, redact: Callable[[str], str]) -> object:
    if isinstance(arg, (int, float)) or arg is None:
        return arg
    return redact(_readable(str(arg)))


def _readable(message: str) -> str:
    """URL-encoded text decoded for matching; a query string's ``+`` is a space."""
    path, mark, query = message.partition("?")
    if mark and "=" in query:
        return unquote(path) + mark + unquote_plus(query)
    return unquote(message) if "%" in message else message


def install(redact: Callable[[], Callable[[str], str]]) -> MaskingFilter:
    """Attach one masking filter to each of :data:`LOGGERS` (replacing an earlier one)."""
    masking = MaskingFilter(redact)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, MaskingFilter)]:
            logger.removeFilter(old)
        logger.addFilter(masking)
    return masking
