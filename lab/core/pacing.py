"""Pacing: when each message of a producer is due. Deadline-based, so it never drifts.

Theory of operation
-------------------
A producer's traffic is described by its rate as a function of time, ``rate(t)``, made of
segments of constant rate. Write ``N(t)`` for the number of messages that rate asks for by
time ``t`` (the integral of the rate). Then:

* **steady** traffic puts message ``k`` at the moment ``N(t) = k``: exactly one message every
  ``1/rate`` seconds, computed from the start, so rounding never accumulates;
* **poisson** traffic puts message ``k`` at ``N(t) = E1 + ... + Ek`` with ``Ei`` drawn from an
  exponential distribution of mean 1: a Poisson process whose rate follows ``rate(t)``;
* a **spike** is just a segment at ten times the rate (the flash sale).

The producer's loop asks ``due_until(now)`` and sends everything that came due, in one
batch if many did: that is how 100,000 msg/s is paced without 100,000 sleeps. A producer
that could not keep up (blocked by backpressure) calls ``skip_to(now)``: the slots it
missed are not owed, as with a thread that was blocked in ``put``.

>>> schedule = PacingSchedule(rate=10.0, start=0.0)
>>> schedule.due_until(0.25)
[0.0, 0.1, 0.2]
>>> schedule.next_due
0.3
"""

from __future__ import annotations

import bisect
import math
import random
from typing import List, NamedTuple, Optional

PROFILES = ("steady", "poisson", "spike")


class Segment(NamedTuple):
    start: float  # time the segment begins
    rate: float  # messages per second during it
    count_at_start: float  # N(start)


class PacingSchedule:
    """Due times for a rate that is constant by segments."""

    __slots__ = ("profile", "_segments", "_starts", "_position", "_next_due", "_rng")

    def __init__(
        self,
        rate: float,
        start: float,
        profile: str = "steady",
        spike_at: Optional[float] = None,
        spike_duration: float = 5.0,
        spike_factor: float = 10.0,
        rng: Optional[random.Random] = None,
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
        if not rate >= 0 or math.isinf(rate):
            raise ValueError("rate must be a finite number of messages per second, >= 0")
        self.profile = profile
        self._rng = rng or random.Random(0)
        self._segments: List[Segment] = [Segment(start, rate, 0.0)]
        self._starts = [start]
        if profile == "spike":
            at = start + (5.0 if spike_at is None else spike_at)
            self._append(at, rate * spike_factor)
            self._append(at + spike_duration, rate)
        self._position = self._first_position()
        self._next_due = self._time_of(self._position)

    # -- the schedule -----------------------------------------------------------------------
    @property
    def next_due(self) -> float:
        return self._next_due

    def rate_at(self, t: float) -> float:
        return self._segment_at(t).rate

    def expected_count(self, t: float) -> float:
        """``N(t)``: how many messages the rate asks for between the start and ``t``."""
        seg = self._segment_at(t)
        return seg.count_at_start + seg.rate * (t - seg.start)

    def due_until(self, now: float, limit: int = 1_000_000) -> List[float]:
        """Due times of every message due at or before ``now`` (at most ``limit``)."""
        due: List[float] = []
        while self._next_due <= now and len(due) < limit:
            due.append(self._next_due)
            self._position += self._step()
            self._next_due = self._time_of(self._position)
        return due

    def skip_to(self, now: float) -> int:
        """Forget slots that came due before ``now``; returns how many were skipped."""
        if self._next_due >= now:
            return 0
        target = self.expected_count(now)
        skipped = max(0, math.ceil(target) - math.ceil(self._position))
        self._position = max(self._position, target)
        self._next_due = self._time_of(self._position)
        return skipped

    # -- live changes (instructor control) ---------------------------------------------------
    def set_rate(self, rate: float, now: float) -> None:
        """From ``now`` on, run at ``rate`` (any planned spike is cancelled)."""
        if not rate >= 0 or math.isinf(rate):
            raise ValueError("rate must be a finite number of messages per second, >= 0")
        self._forget_before(min(now, self._next_due))
        self._truncate(now)
        self._append(now, rate)
        self._reposition(now)

    def start_spike(self, now: float, factor: float = 10.0, duration: float = 5.0) -> None:
        base = self.rate_at(now)
        self._truncate(now)
        self._append(now, base * factor)
        self._append(now + duration, base)
        self._reposition(now)

    # -- internals ---------------------------------------------------------------------------
    def _first_position(self) -> float:
        return 0.0 if self.profile != "poisson" else self._rng.expovariate(1.0)

    def _step(self) -> float:
        return 1.0 if self.profile != "poisson" else self._rng.expovariate(1.0)

    def _segment_at(self, t: float) -> Segment:
        index = bisect.bisect_right(self._starts, t) - 1
        return self._segments[max(index, 0)]

    def _time_of(self, position: float) -> float:
        """``N^-1(position)``: the moment the schedule reaches ``position``."""
        segments = self._segments
        for index in range(len(segments) - 1, -1, -1):
            seg = segments[index]
            if seg.count_at_start <= position:
                if seg.rate > 0:
                    return seg.start + (position - seg.count_at_start) / seg.rate
                # a pause: the position is reached when a later segment starts running
                for later in segments[index + 1 :]:
                    if later.rate > 0:
                        return later.start
                return math.inf
        return segments[0].start

    def _append(self, start: float, rate: float) -> None:
        last = self._segments[-1]
        start = max(start, last.start)
        count = last.count_at_start + last.rate * (start - last.start)
        if start == last.start:
            self._segments[-1] = Segment(start, rate, last.count_at_start)
        else:
            self._segments.append(Segment(start, rate, count))
            self._starts.append(start)

    def _forget_before(self, t: float) -> None:
        """Drop the segments that ended before ``t``: no due time to come lies in them (the
        next one is at or after ``t``), and a rate set many times a second (the throttle on
        lag) would otherwise pile them up without bound."""
        while len(self._segments) > 1 and self._starts[1] <= t:
            del self._segments[0]
            del self._starts[0]

    def _truncate(self, now: float) -> None:
        while len(self._segments) > 1 and self._segments[-1].start > now:
            self._segments.pop()
            self._starts.pop()

    def _reposition(self, now: float) -> None:
        """After a rate change the next message is due by the new rate, counted from now."""
        position_now = self.expected_count(now)
        if self._position < position_now:
            self._position = position_now
        elif self.profile != "poisson":
            # the pending slot was planned at the old rate: replan it at the new one
            self._position = position_now + min(1.0, self._position - position_now)
        self._next_due = self._time_of(self._position)
