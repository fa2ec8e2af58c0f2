"""Clocks: the only place the lab reads time.

Rules: the core never calls ``time``; it is handed ``now`` (seconds, float) by the shell.
The shell reads :class:`MonotonicClock`. Tests drive the core with :class:`FakeClock`, whose
time moves only when the test says so, so every assertion can be exact.

Wall-clock (epoch) seconds appear only on the wire, where two processes must agree on a
time base; :meth:`MonotonicClock.to_epoch` converts.
"""

from __future__ import annotations

import time


class MonotonicClock:
    """Seconds from an arbitrary origin that never jump backwards.

    >>> clock = MonotonicClock()
    >>> t0 = clock.now(); t1 = clock.now(); t1 >= t0
    True
    """

    __slots__ = ("_epoch_offset",)

    def __init__(self) -> None:
        self._epoch_offset = time.time() - time.perf_counter()

    def now(self) -> float:
        return time.perf_counter()

    def to_epoch(self, monotonic_seconds: float) -> float:
        """The wall-clock time at which this clock read ``monotonic_seconds``."""
        return monotonic_seconds + self._epoch_offset

    def from_epoch(self, epoch_seconds: float) -> float:
        return epoch_seconds - self._epoch_offset


class FakeClock:
    """A clock for tests: ``advance`` moves it, nothing else does.

    >>> clock = FakeClock(100.0)
    >>> clock.advance(0.5)
    100.5
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds
        return self._now

    def to_epoch(self, monotonic_seconds: float) -> float:
        return monotonic_seconds

    def from_epoch(self, epoch_seconds: float) -> float:
        return epoch_seconds
