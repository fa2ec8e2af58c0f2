"""Retrying: exponential backoff with jitter (and, for Module 15, a circuit breaker).

Why jitter: when a consumer sheds a burst, every producer that was told "retry later" would
otherwise come back at the same instant and shed again. Drawing the delay at random between
0 and the backoff ("full jitter") spreads the comeback out.

>>> import random
>>> backoff = Backoff(base_s=0.1, cap_s=1.0, rng=random.Random(1), jitter=False)
>>> [backoff.delay(attempt) for attempt in (1, 2, 3, 4, 5)]
[0.1, 0.2, 0.4, 0.8, 1.0]
>>> backoff.delay(1, retry_after_s=0.5)     # the server's retry-after is a floor
0.5
"""

from __future__ import annotations

import random
from typing import Optional


class Backoff:
    """Delay before retry number ``attempt`` (1 = first retry): ``min(cap, base * 2**(attempt-1))``,
    scaled by a uniform random factor in [0, 1) when ``jitter`` is on, never below the
    ``retry_after`` the consumer asked for."""

    __slots__ = ("base_s", "cap_s", "jitter", "_rng")

    def __init__(
        self,
        base_s: float = 0.05,
        cap_s: float = 2.0,
        rng: Optional[random.Random] = None,
        jitter: bool = True,
    ) -> None:
        if base_s < 0 or cap_s < base_s:
            raise ValueError("need 0 <= base <= cap")
        self.base_s = base_s
        self.cap_s = cap_s
        self.jitter = jitter
        self._rng = rng or random.Random(0)

    def delay(self, attempt: int, retry_after_s: float = 0.0) -> float:
        ceiling = min(self.cap_s, self.base_s * (2 ** max(attempt - 1, 0)))
        delay = self._rng.random() * ceiling if self.jitter else ceiling
        return max(delay, retry_after_s)


CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    """Stop calling a dependency that keeps failing, and test it gently before trusting it.

    * **closed**: requests flow; ``failure_threshold`` failures in a row open the breaker.
    * **open**: requests fail at once, without touching the overloaded consumer, for
      ``open_s`` seconds: the consumer gets room to drain its backlog.
    * **half-open**: ``probes`` requests may go; if they all succeed the breaker closes,
      if one fails it opens again.

    >>> breaker = CircuitBreaker(failure_threshold=2, open_s=1.0, probes=1)
    >>> breaker.record_failure(0.0); breaker.record_failure(0.1); breaker.state
    'open'
    >>> breaker.allow(0.5), breaker.allow(1.2), breaker.allow(1.3)   # one probe after 1 s
    (False, True, False)
    >>> breaker.record_success(1.4); breaker.state
    'closed'
    """

    __slots__ = (
        "failure_threshold",
        "open_s",
        "probes",
        "state",
        "transitions",
        "_failures",
        "_opened_at",
        "_probes_left",
        "_probe_successes",
    )

    def __init__(self, failure_threshold: int = 5, open_s: float = 2.0, probes: int = 3) -> None:
        if failure_threshold < 1 or probes < 1 or open_s <= 0:
            raise ValueError("need failure_threshold >= 1, probes >= 1 and open_s > 0")
        self.failure_threshold = failure_threshold
        self.open_s = open_s
        self.probes = probes
        self.state = CLOSED
        self.transitions = 0
        self._failures = 0
        self._opened_at = 0.0
        self._probes_left = 0
        self._probe_successes = 0

    def allow(self, now: float) -> bool:
        if self.state == OPEN and now >= self._opened_at + self.open_s:
            self._move(HALF_OPEN)
            self._probes_left, self._probe_successes = self.probes, 0
        if self.state == CLOSED:
            return True
        if self.state == HALF_OPEN and self._probes_left > 0:
            self._probes_left -= 1
            return True
        return False

    def record_success(self, now: float) -> None:
        self._failures = 0
        if self.state == HALF_OPEN:
            self._probe_successes += 1
            if self._probe_successes >= self.probes:
                self._move(CLOSED)

    def record_failure(self, now: float) -> None:
        self._failures += 1
        if self.state == HALF_OPEN or (
            self.state == CLOSED and self._failures >= self.failure_threshold
        ):
            self._opened_at = now
            self._move(OPEN)

    def _move(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.transitions += 1
