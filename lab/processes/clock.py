"""The real clock: the only place the lab's processes read time.

The core is handed ``now`` (seconds, float) by the shell, which reads
:class:`MonotonicClock`. Wall-clock (epoch) seconds appear only on the wire, where two
processes must agree on a time base; :meth:`MonotonicClock.to_epoch` converts.
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
