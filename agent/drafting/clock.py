"""The time of day a customer says they paid at (下午4点付的款, 16点付的款, 下晝四點俾錢).

Read only where it is unambiguous: a 24-hour clock (16点, 16:30), a time of day said with it
(下午, 晚上, 中午 ...), or 1 to 6 o'clock with none (a shop's customers pay at 4 in the
afternoon, not at 4 in the morning). 7 to 12 o'clock said alone (8点) is morning or evening,
and is not read. :class:`AfterCutoff` (composer.yaml's ``after_cutoff``) uses it to decline
same-day shipping to a payment after the shop's cutoff.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

_NUMERALS = {"零": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
# Times of day after noon: an hour under 12 said with one is in the afternoon or evening.
_AFTERNOON = ("下午", "傍晚", "晚上", "夜里", "夜裡", "今晚", "夜晚", "下晝", "晏晝", "晏昼", "下昼")
_MORNING = ("凌晨", "早上", "早晨", "清晨", "上午", "朝早")
_PERIODS = "|".join(re.escape(p) for p in sorted((*_AFTERNOON, *_MORNING, "中午"), key=len, reverse=True))
_NUMBER = r"\d{1,2}|[零一二两兩三四五六七八九十]{1,3}"
_TIME = re.compile(
    rf"(?P<period>{_PERIODS})?\s*(?P<hour>{_NUMBER})\s*"
    rf"(?:[:：](?P<colon>\d{{2}})|[点點时時]\s*(?:(?P<half>半)|(?P<minute>{_NUMBER})\s*分?)?)"
)


def _number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    if text == "十":
        return 10
    if text.startswith("十"):
        rest = _NUMERALS.get(text[1:])
        return None if rest is None else 10 + rest
    if text.endswith("十") and len(text) == 2:
        tens = _NUMERALS.get(text[0])
        return None if tens is None else tens * 10
    if "十" in text:
        before, _, after = text.partition("十")
        tens, ones = _NUMERALS.get(before), _NUMERALS.get(after)
        return None if tens is None or ones is None else tens * 10 + ones
    return _NUMERALS.get(text) if len(text) == 1 else None


def paid_at(text: str, paying: re.Pattern[str], reach: int = 6) -> float | None:
    """The hour (24-hour, minutes as a fraction) of the first unambiguous time in ``text`` that a
    paying word (``paying``) follows within ``reach`` characters; None when there is none."""
    for match in _TIME.finditer(text):
        if paying.search(text, match.end(), match.end() + reach) is None:
            continue
        hour = _number(match.group("hour"))
        if hour is None or hour > 24:
            continue
        minute_text = match.group("colon") or match.group("minute")
        minute = 30 if match.group("half") else (_number(minute_text) if minute_text else 0)
        if minute is None or minute >= 60:
            continue
        period = match.group("period")
        if period is None and 7 <= hour <= 12:
            continue  # morning or evening: not read
        afternoon = (period in _AFTERNOON and hour < 12) or (period == "中午" and hour < 11)
        if afternoon or (period is None and 1 <= hour <= 6):
            hour += 12
        return hour + minute / 60
    return None


def hour_of(clock: str) -> float | None:
    """``"15:00"`` as 15.0 (a shop's cutoff time)."""
    match = re.fullmatch(r"\s*(\d{1,2})[:：](\d{2})\s*", clock)
    return None if match is None else int(match.group(1)) + int(match.group(2)) / 60


class AfterCutoff(BaseModel):
    """The answer of a ship-time script to a customer who paid after the shop's cutoff and asks
    whether it ships today (下午4点付的款今天能发吗): a decline, not the rule (which reads as yes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scripts: list[str] = Field(min_length=1)
    reply: str = Field(min_length=1)
    # The message asks about today; a paying word follows the time it states (下午4点付的款).
    today: list[str] = Field(min_length=1)
    paying: list[str] = Field(min_length=1)

    def applies(self, message: str, cutoff: str | None) -> bool:
        """Whether ``message`` asks about today and states a payment time after ``cutoff`` (15:00)."""
        limit = hour_of(cutoff) if cutoff else None
        if limit is None or re.search("|".join(self.today), message) is None:
            return False
        hour = paid_at(message, re.compile("|".join(self.paying)))
        return hour is not None and hour > limit
