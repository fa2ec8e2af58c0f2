"""The fake clock the core's tests drive: time moves only when the test says so.

Rules: the core never reads time; it is handed ``now`` (seconds, float) by the shell, which
reads ``lab.processes.clock.MonotonicClock``. A :class:`FakeClock` has the same methods, so
a test can stand in for the shell and every assertion can be exact.
"""

from __future__ import annotations


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
