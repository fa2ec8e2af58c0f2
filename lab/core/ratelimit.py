"""Rate limiting (Module 14): the token bucket, and admission control with "429, retry after".

A token bucket holds at most ``capacity`` tokens and gains ``rate`` tokens a second. Each
message spends one. So bursts of up to ``capacity`` messages pass at once, while over any
long stretch no more than ``rate`` a second get through: bursts allowed, average bounded.
A bucket of capacity 1 is the fixed-interval limiter (one message every ``1/rate`` s, no
bursts at all).

>>> bucket = TokenBucket(capacity=3, rate=1.0, now=0.0)
>>> [bucket.try_take(0.0) for _ in range(4)]        # a burst of 3, then empty
[True, True, True, False]
>>> bucket.time_until(0.0)                           # the next token in one second
1.0
>>> bucket.try_take(1.0)
True

The producer uses a bucket to pace itself (``--limit token-bucket``); the consumer's
``admit`` mode uses one as admission control and sheds what exceeds it, telling the producer
exactly when the next token will be there.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

from lab.core.buffer import Buffer, Message
from lab.core.policies import ACCEPT, DEFAULT_RETRY_AFTER_MS, Decision, OverflowPolicy

LIMITERS = ("none", "interval", "token-bucket")


class TokenBucket:
    """A token bucket; every method takes ``now`` (seconds)."""

    __slots__ = ("capacity", "rate", "_tokens", "_updated")

    def __init__(self, capacity: float, rate: float, now: float = 0.0, full: bool = True):
        if capacity < 1:
            raise ValueError("a bucket must hold at least one token")
        if not rate > 0:
            raise ValueError("the refill rate must be positive")
        self.capacity = float(capacity)
        self.rate = float(rate)
        self._tokens = self.capacity if full else 0.0
        self._updated = now

    def tokens(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def try_take(self, now: float, count: int = 1) -> bool:
        self._refill(now)
        if self._tokens >= count:
            self._tokens -= count
            return True
        return False

    def take_up_to(self, now: float, count: int) -> int:
        """Spend as many whole tokens as are there, at most ``count``; returns how many."""
        self._refill(now)
        taken = min(count, int(self._tokens))
        self._tokens -= taken
        return taken

    def time_until(self, now: float, count: int = 1) -> float:
        """Seconds until ``count`` tokens are there (0 if they already are)."""
        self._refill(now)
        return max(0.0, (count - self._tokens) / self.rate)

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now


def make_limiter(kind: str, rate: float, burst: int, now: float) -> Optional[TokenBucket]:
    """The producer's limiter for ``--limit``: None, a bucket of 1, or a bucket of ``burst``."""
    if kind == "none":
        return None
    if kind == "interval":
        return TokenBucket(1, rate, now)
    if kind == "token-bucket":
        return TokenBucket(burst, rate, now)
    raise ValueError(f"unknown limiter {kind!r}; choose one of: {', '.join(LIMITERS)}")


class AdmissionPolicy(OverflowPolicy):
    """Admission control: a token bucket in front of the buffer. A message without a token
    is shed with the exact wait until the next one (HTTP's 429 with Retry-After); a message
    that finds the buffer full is shed too (503)."""

    name = "admit"

    def __init__(self, rate: float, burst: int, retry_after_ms: int = DEFAULT_RETRY_AFTER_MS):
        self.bucket = TokenBucket(burst, rate)
        self.full_retry_after_ms = retry_after_ms
        self._shed_full = Decision.shed(retry_after_ms)
        self.limited = 0

    def decide(self, message: Message, buffer: Buffer, now: float) -> Decision:
        if buffer.depth >= self.admission_limit(buffer):
            return self._shed_full
        if not self.bucket.try_take(now):
            self.limited += 1
            return Decision.shed(max(1, math.ceil(self.bucket.time_until(now) * 1000)))
        return ACCEPT

    def status(self) -> Dict[str, Any]:
        return {
            "tokens": round(self.bucket._tokens, 2),
            "bucket_capacity": self.bucket.capacity,
            "bucket_rate": self.bucket.rate,
            "limited": self.limited,
        }
