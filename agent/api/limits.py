"""Bounds on what one caller can cost: per-key rate limits and a cap on concurrent drafts.

* Each key has a token bucket of ``burst`` units refilled at ``rate_per_s``. A request costs one
  unit, a draft one more per ``chars_per_unit`` characters it asks kefu to read, so a maximal
  message costs about as much as nine short ones.
* At most ``max_drafts`` drafts run at once in a process, and at most ``max_long_drafts`` of them
  for messages over ``long_chars``; and long drafts together may keep the process busy for at most
  ``long_duty`` of the time (after a long draft that took ``d`` seconds the long lane rests
  ``d * (1 / long_duty - 1)``): long messages cannot take the CPU from short ones.

Past a bound the answer is 429 with ``Retry-After`` (seconds). Settings come from the
environment (``KEFU_API_RATE_PER_S`` …). The bounds hold per server process: with
``kefu serve --workers N`` a key may spend N times its rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.errors import KefuError


class Limits(BaseSettings):
    """The API's bounds; ``KEFU_API_*`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="KEFU_API_", extra="ignore")

    rate_per_s: float = Field(default=50.0, gt=0, description="Units a key regains per second.")
    burst: float = Field(default=100.0, gt=0, description="Units a key may spend at once.")
    chars_per_unit: int = Field(default=1000, gt=0, description="A draft costs one unit more per this many chars.")
    max_drafts: int = Field(default=8, gt=0, description="Drafts running at once in a process.")
    max_long_drafts: int = Field(default=1, gt=0, description="Of those, drafts of long messages.")
    long_chars: int = Field(default=1000, gt=0, description="A message at least this long is long.")
    long_duty: float = Field(default=0.5, gt=0, le=1, description="Share of the time long drafts may run.")
    readyz_interval_s: float = Field(default=5.0, ge=0, description="How long a readiness result is reused.")


class RateLimitedError(KefuError):
    """Over a bound: try again after ``retry_after_s`` seconds (429)."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    """Token buckets per key name."""

    rate_per_s: float
    burst: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _buckets: dict[str, _Bucket] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, key: str, cost: float = 1.0) -> None:
        """Spend ``cost`` units of ``key``'s bucket, or raise RateLimitedError saying when to retry."""
        now = self.clock()
        cost = min(cost, self.burst)  # a request bigger than the burst is possible, just slow
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate_per_s)
            bucket.stamp = now
            if bucket.tokens < cost:
                wait = (cost - bucket.tokens) / self.rate_per_s
                raise RateLimitedError(f"rate limit of this key reached: retry in {wait:.1f} s", wait)
            bucket.tokens -= cost


@dataclass
class DraftSlots:
    """The cap on concurrent drafts, with a smaller lane for long messages that also rests between them."""

    max_drafts: int
    max_long: int
    long_duty: float = 1.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _running: int = 0
    _long: int = 0
    _long_rests_until: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def slot(self, long: bool) -> Iterator[None]:
        """Hold one draft slot (a long one when ``long``) for the block; 429 when none is free."""
        with self._lock:
            self._admit(long)
            self._running += 1
            self._long += int(long)
        started = self.clock()
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                self._long -= int(long)
                if long:
                    ended = self.clock()
                    rest = (ended - started) * (1 / self.long_duty - 1)
                    self._long_rests_until = max(self._long_rests_until, ended + rest)

    def _admit(self, long: bool) -> None:
        if self._running >= self.max_drafts:
            raise RateLimitedError("too many drafts running on this server: retry in a second", 1.0)
        if not long:
            return
        if self._long >= self.max_long:
            raise RateLimitedError("too many long-message drafts running on this server: retry in a second", 1.0)
        wait = self._long_rests_until - self.clock()
        if wait > 0:
            raise RateLimitedError(f"long-message drafts are resting on this server: retry in {wait:.1f} s", wait)


def draft_cost(chars: int, limits: Limits) -> float:
    """The units a draft that reads ``chars`` characters costs."""
    return 1.0 + chars // limits.chars_per_unit
