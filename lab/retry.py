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
