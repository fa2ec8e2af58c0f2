"""Retrying: the retry modes, exponential backoff with jitter, and a circuit breaker.

Theory of operation
-------------------
A *retry policy* answers one question for a message that was shed or timed out: how long
to wait before attempt number ``attempt`` (1 = the first retry), or ``None`` to give up.
Its interface is the one the exercises' plugins have (``lab.processes.plugins``)::

    delay(attempt, retry_after_s, now) -> Optional[float]
    on_success(now), on_failure(now)        # optional: told of every attempt's outcome

The built-in modes are small classes behind that interface, and :data:`RETRY_MODES` (name
-> builder from a ``ProducerConfig`` and the producer's seeded ``random.Random``) is the
only place that knows their names; ``--retry`` choices come from it. The producer calls
the one policy object it was built with and never looks at the mode's name.

* ``none``: give up at once;
* ``immediate``: retry at once (the retry storm of Module 15);
* ``exponential``: ``base * 2**(attempt-1)``, capped, no jitter, the retry-after a floor;
* ``backoff``: the same with full jitter.

The rules the producer adds around any policy: never more than ``max_attempts`` attempts,
a negative delay counts as 0, and no retry that would go after the request's deadline.

Why jitter: when a consumer sheds a burst, every producer that was told "retry later" would
otherwise come back at the same instant and shed again. Drawing the delay at random between
0 and the backoff ("full jitter") spreads the comeback out.

>>> import random
>>> backoff = Backoff(base_s=0.1, cap_s=1.0, rng=random.Random(1), jitter=False)
>>> [backoff.delay(attempt) for attempt in (1, 2, 3, 4, 5)]
[0.1, 0.2, 0.4, 0.8, 1.0]
>>> backoff.delay(1, retry_after_s=0.5)     # the server's retry-after is a floor
0.5
>>> from lab.core.config import ProducerConfig
>>> config = ProducerConfig(backoff_base_s=0.1)
>>> [RETRY_MODES[name](config, random.Random(0)).delay(1, 0.0, 0.0) for name in RETRY_POLICIES]
[None, 0.0, 0.1, 0.08444218515250482]
"""

from __future__ import annotations

import random
from typing import Any, Callable, Dict, Optional, Tuple


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


class NoRetry:
    """``none``: every shed or timed-out message is given up at once."""

    def delay(self, attempt: int, retry_after_s: float, now: float) -> Optional[float]:
        return None


class ImmediateRetry:
    """``immediate``: try again at once, whatever the consumer asked for."""

    def delay(self, attempt: int, retry_after_s: float, now: float) -> Optional[float]:
        return 0.0


class BackoffRetry:
    """``exponential`` (no jitter) and ``backoff`` (full jitter): :class:`Backoff`."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff

    def delay(self, attempt: int, retry_after_s: float, now: float) -> Optional[float]:
        return self.backoff.delay(attempt, retry_after_s)


RetryBuilder = Callable[[Any, random.Random], Any]


def _backoff(jitter: bool) -> RetryBuilder:
    def build(config: Any, rng: random.Random) -> BackoffRetry:
        return BackoffRetry(
            Backoff(config.backoff_base_s, config.backoff_cap_s, rng=rng, jitter=jitter)
        )

    return build


# The built-in modes, by the name ``--retry`` takes: the only place that knows the names.
RETRY_MODES: Dict[str, RetryBuilder] = {
    "none": lambda config, rng: NoRetry(),
    "immediate": lambda config, rng: ImmediateRetry(),
    "exponential": _backoff(jitter=False),
    "backoff": _backoff(jitter=True),
}
RETRY_POLICIES: Tuple[str, ...] = tuple(RETRY_MODES)


def build_retry_policy(config: Any, rng: random.Random) -> Any:
    """The policy a producer with ``config`` uses: the exercise's plugin if it has one,
    else the built-in mode ``config.retry`` (which must be valid: the config is checked
    here, not later). ``rng`` is the producer's seeded generator, drawn from in the order
    the retries happen."""
    if config.retry not in RETRY_MODES:
        raise ValueError(
            f"unknown retry policy {config.retry!r}; choose one of: {', '.join(RETRY_POLICIES)}"
        )
    built = RETRY_MODES[config.retry](config, rng)
    return config.retry_plugin if config.retry_plugin is not None else built


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
