"""Metrics: rates over a sliding window and latency percentiles. Pure: every call takes ``now``.

Definitions (the same everywhere in the lab, see ``docs/protocol.md``):

* A *rate* is the number of events in the last ``window`` seconds (1 s by default) divided by
  the window. Events are stamped to the millisecond, so a rate is exact up to the events of
  one millisecond at the window's edge.
* A *percentile* uses the nearest-rank rule: p99 is the smallest recorded value that at
  least 99% of the samples do not exceed. Values are kept in a log-linear histogram
  (HdrHistogram's idea) with 128 steps per power of two, so a reported value is within
  0.4% of the true sample; values below 256 microseconds are kept exactly.
* *Recent* percentiles cover the last few whole seconds (5 by default); *run* percentiles
  cover everything since the start.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Deque, Dict, Iterable, Optional

_SUB_BITS = 8  # 2**8 = 256 exact values, then 128 buckets per power of two
_EXACT_LIMIT = 1 << _SUB_BITS


class RateWindow:
    """Events per second over a sliding window.

    >>> rate = RateWindow(window=1.0)
    >>> rate.add(0.0, 5); rate.add(0.5, 5)
    >>> rate.rate(0.9), rate.rate(1.2)
    (10.0, 5.0)
    """

    __slots__ = ("window", "resolution", "_times", "_counts", "_in_window", "total")

    def __init__(self, window: float = 1.0, resolution: float = 0.001) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self.window = window
        self.resolution = resolution
        self._times: Deque[float] = deque()
        self._counts: Deque[int] = deque()
        self._in_window = 0
        self.total = 0

    def add(self, now: float, count: int = 1) -> None:
        if count <= 0:
            return
        self.total += count
        self._in_window += count
        if self._times and now - self._times[-1] < self.resolution:
            self._counts[-1] += count
        else:
            self._times.append(now)
            self._counts.append(count)

    def count(self, now: float) -> int:
        """Events stamped in ``(now - window, now]``."""
        horizon = now - self.window
        times, counts = self._times, self._counts
        while times and times[0] <= horizon:
            times.popleft()
            self._in_window -= counts.popleft()
        return self._in_window

    def rate(self, now: float) -> float:
        return self.count(now) / self.window


def round_up(value: float, places: int = 1) -> float:
    """``value`` rounded up to ``places`` decimals: a peak that passed a limit never reads as at it.

    >>> round_up(150.0001), round_up(150.0)
    (150.1, 150.0)
    """
    scale = 10**places
    return math.ceil(round(value * scale, 6)) / scale


def _bucket(value_us: int) -> int:
    if value_us < _EXACT_LIMIT:
        return value_us
    shift = value_us.bit_length() - _SUB_BITS
    return (shift << _SUB_BITS) | (value_us >> shift)


def _bucket_value(key: int) -> float:
    """A representative value (microseconds) of a bucket: exact below 256, else its midpoint."""
    if key < _EXACT_LIMIT:
        return float(key)
    shift = key >> _SUB_BITS
    mantissa = key & (_EXACT_LIMIT - 1)
    low = mantissa << shift
    return low + ((1 << shift) - 1) / 2.0


def _percentile_of(buckets: Dict[int, int], total: int, percent: float) -> float:
    if total == 0:
        return 0.0
    rank = max(1, math.ceil(percent / 100.0 * total))
    seen = 0
    for key in sorted(buckets):
        seen += buckets[key]
        if seen >= rank:
            return _bucket_value(key) / 1e6
    raise AssertionError("histogram counts do not add up")  # pragma: no cover


class LatencyHistogram:
    """All the samples of a run: count, exact sum, exact max, and percentiles.

    >>> hist = LatencyHistogram()
    >>> for ms in range(1, 101): hist.record(ms / 1000)
    >>> round(hist.percentile(50), 4), hist.max, round(hist.mean, 4)
    (0.05, 0.1, 0.0505)
    """

    __slots__ = ("_buckets", "count", "sum", "max")

    def __init__(self) -> None:
        self._buckets: Dict[int, int] = {}
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def record(self, seconds: float, count: int = 1) -> None:
        """Add ``count`` samples of value ``seconds``."""
        if seconds < 0:
            seconds = 0.0
        value_us = int(seconds * 1e6 + 0.5)  # rounded: the 0.4% bound holds for every value
        if value_us < _EXACT_LIMIT:
            key = value_us
        else:
            shift = value_us.bit_length() - _SUB_BITS
            key = (shift << _SUB_BITS) | (value_us >> shift)
        buckets = self._buckets
        buckets[key] = buckets.get(key, 0) + count
        self.count += count
        self.sum += seconds * count
        if seconds > self.max:
            self.max = seconds

    def record_many(self, values: Iterable[float]) -> None:
        """``record`` each value once: the same buckets, the per-call cost paid once (the
        producer's hot path records a whole run of verdicts at a time)."""
        buckets = self._buckets
        get = buckets.get
        # the sum is carried on from self.sum, not added as a subtotal: float addition is
        # not associative, and a run recorded at once must sum exactly as one by one
        count, total, top = 0, self.sum, self.max
        for seconds in values:
            if seconds < 0:
                seconds = 0.0
            value_us = int(seconds * 1e6 + 0.5)
            if value_us < _EXACT_LIMIT:  # the bucket of record(), inlined
                key = value_us
            else:
                shift = value_us.bit_length() - _SUB_BITS
                key = (shift << _SUB_BITS) | (value_us >> shift)
            buckets[key] = get(key, 0) + 1
            count += 1
            total += seconds
            if seconds > top:
                top = seconds
        self.count += count
        self.sum = total
        self.max = top

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0

    def percentile(self, percent: float) -> float:
        # A bucket stands for values up to 0.4 % apart: its value may lie above every sample
        # in it, and no percentile may pass the exact max.
        return min(self.max, _percentile_of(self._buckets, self.count, percent))

    def merge(self, other: LatencyHistogram) -> None:
        for key, value in other._buckets.items():
            self._buckets[key] = self._buckets.get(key, 0) + value
        self.count += other.count
        self.sum += other.sum
        self.max = max(self.max, other.max)


class RecentLatency:
    """Percentiles over the last ``seconds`` whole seconds (the current one included), and,
    with :meth:`total`, over the whole run: each sample is recorded once.

    >>> recent = RecentLatency(seconds=2)
    >>> recent.record(0.0, 0.010); recent.record(2.5, 0.020)
    >>> recent.summary(2.5)["max"]      # the sample from t=0 has aged out
    0.02
    >>> recent.total().count, recent.total().max
    (2, 0.02)
    """

    __slots__ = ("seconds", "_slots", "_current_slot", "_current", "_archive")

    def __init__(self, seconds: int = 5) -> None:
        if seconds < 1:
            raise ValueError("keep at least one second")
        self.seconds = seconds
        self._slots: Deque[tuple] = deque()  # (whole second, LatencyHistogram)
        self._current_slot: Optional[int] = None
        self._current: Optional[LatencyHistogram] = None
        self._archive = LatencyHistogram()  # everything that aged out

    def record(self, now: float, seconds: float, count: int = 1) -> None:
        self._histogram_at(now).record(seconds, count)

    def record_many(self, now: float, values: Iterable[float]) -> None:
        """``record(now, value)`` for each value (all samples of the same moment)."""
        self._histogram_at(now).record_many(values)

    def _histogram_at(self, now: float) -> LatencyHistogram:
        """The histogram of the whole second ``now`` falls in (a new one as time moves)."""
        slot = int(now // 1)
        if slot != self._current_slot or self._current is None:
            self._current_slot = slot
            self._current = LatencyHistogram()
            self._slots.append((slot, self._current))
            self._expire(slot)
        return self._current

    def merged(self, now: float) -> LatencyHistogram:
        self._expire(math.floor(now))
        merged = LatencyHistogram()
        for _, hist in self._slots:
            merged.merge(hist)
        return merged

    def total(self) -> LatencyHistogram:
        """Every sample ever recorded."""
        total = LatencyHistogram()
        total.merge(self._archive)
        for _, hist in self._slots:
            total.merge(hist)
        return total

    def summary(self, now: float, percents: Iterable[float] = (50, 95, 99)) -> Dict[str, float]:
        merged = self.merged(now)
        out = {f"p{_label(p)}": merged.percentile(p) for p in percents}
        out["max"] = merged.max
        out["count"] = merged.count
        out["mean"] = merged.mean
        return out

    def _expire(self, current_slot: int) -> None:
        while self._slots and self._slots[0][0] <= current_slot - self.seconds:
            _, hist = self._slots.popleft()
            self._archive.merge(hist)
            if hist is self._current:
                self._current, self._current_slot = None, None


def _label(percent: float) -> str:
    return str(int(percent)) if float(percent).is_integer() else str(percent).replace(".", "_")


class TimeWeightedMean:
    """The time-average of a quantity that changes in steps (mean buffer depth, for L = λW).

    >>> mean = TimeWeightedMean(start=0.0)
    >>> mean.update(0.0, 2); mean.update(1.0, 4)
    >>> mean.value(2.0)
    3.0
    """

    __slots__ = ("_start", "_last_time", "_last_value", "_area")

    def __init__(self, start: float, value: float = 0.0) -> None:
        self._start = self._last_time = start
        self._last_value = value
        self._area = 0.0

    def update(self, now: float, value: float) -> None:
        if now > self._last_time:
            self._area += self._last_value * (now - self._last_time)
            self._last_time = now
        self._last_value = value

    def value(self, now: Optional[float] = None) -> float:
        now = self._last_time if now is None else max(now, self._last_time)
        elapsed = now - self._start
        if elapsed <= 0:
            return float(self._last_value)
        return (self._area + self._last_value * (now - self._last_time)) / elapsed

    def reset(self, now: float) -> None:
        self._start = self._last_time = now
        self._area = 0.0


class RecoveryClock:
    """How long a system takes to be normal again once a traffic spike is over.

    Give it the spike's start and end, and the latency p99 that was normal before the
    spike; then feed it, now and then, the last second's p99, failure count and (when the
    caller knows it) completion count. It is *recovered* at the first moment after the
    spike's end when latency is back under ``max(2 x baseline, baseline + 50 ms)``, nothing
    failed in the last second, and something completed: an empty window is silence, not
    health (its p99 is reported as 0, so a p99 of exactly 0 counts as no completions when
    the count is not given).

    >>> clock = RecoveryClock()
    >>> clock.spike(start=5.0, end=10.0, baseline_p99=0.010)
    >>> clock.update(11.0, recent_p99=0.900, recent_failures=3)   # still overloaded
    >>> clock.update(12.0, recent_p99=0.0, recent_failures=0)     # nothing completed
    >>> clock.recovery_s is None
    True
    >>> clock.update(13.5, recent_p99=0.015, recent_failures=0)
    >>> clock.recovery_s
    3.5
    """

    __slots__ = ("spike_start", "spike_end", "baseline_p99", "recovered_at")

    def __init__(self) -> None:
        self.spike_start: Optional[float] = None
        self.spike_end: Optional[float] = None
        self.baseline_p99 = 0.0
        self.recovered_at: Optional[float] = None

    def spike(self, start: float, end: float, baseline_p99: float) -> None:
        self.spike_start, self.spike_end = start, end
        self.baseline_p99 = baseline_p99
        self.recovered_at = None

    @property
    def threshold_s(self) -> float:
        return max(2 * self.baseline_p99, self.baseline_p99 + 0.05)

    def update(
        self,
        now: float,
        recent_p99: float,
        recent_failures: int,
        recent_completions: Optional[int] = None,
    ) -> None:
        if self.spike_end is None or self.recovered_at is not None or now < self.spike_end:
            return
        completed = recent_p99 > 0 if recent_completions is None else recent_completions > 0
        if completed and recent_p99 <= self.threshold_s and recent_failures == 0:
            self.recovered_at = now

    @property
    def recovery_s(self) -> Optional[float]:
        if self.recovered_at is None or self.spike_end is None:
            return None
        return self.recovered_at - self.spike_end

    def state(self, now: float) -> str:
        if self.spike_start is None or now < self.spike_start:
            return "before spike"
        if self.spike_end is not None and now < self.spike_end:
            return "spike"
        return "recovered" if self.recovered_at is not None else "recovering"
