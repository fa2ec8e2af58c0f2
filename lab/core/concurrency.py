"""Adaptive concurrency limits: how many messages a producer may have outstanding.

Theory of operation
-------------------
A message is *outstanding* from the moment it is sent until its final answer: processed,
or dropped, sampled out, shed, evicted, timed out. By Little's law a consumer that finishes
λ messages a second, each after W seconds, holds L = λ·W of them on average. Any limit
above what the consumer can work on only adds queueing (W grows, λ does not); any limit
below leaves it idle. The consumer's λ and W are not known in advance, so the producer
measures round trips (send to processed) and moves its limit, like a TCP congestion window,
as Netflix's concurrency-limits library does (``AIMDLimit``, ``GradientLimit``):

* :class:`AimdLimit` (loss-based). Each run of ``limit`` good answers adds 1; a shed, a
  drop, a timeout, or an answer slower than ``timeout_s`` multiplies the limit by
  ``backoff`` (0.9), at most once per round trip: answers for messages sent before the
  last cut do not cut again (TCP's rule: one burst of losses is one congestion signal).
  The limit does not grow while fewer than half of it are in use (nothing was tested).
* :class:`GradientLimit` (delay-based). Answers are gathered in windows (at least
  ``window_samples`` answers and ``window_s`` seconds). The no-load round trip is the
  smallest window average seen; each window sets
  ``limit = limit * gradient + sqrt(limit)`` with
  ``gradient = clamp(tolerance * rtt_noload / rtt, 0.5, 1)``: while the round trip stays
  within ``tolerance`` times the no-load one the limit grows by a queue allowance of
  ``sqrt(limit)`` (at least ``min_queue``), and past it the limit shrinks, smoothed
  (``smoothing`` of the step on the way down). A window with a drop halves the limit.
  Every ``probe_windows`` windows the no-load estimate is forgotten and the limit falls to
  its queue allowance, to measure again.

:class:`LimitGate` wraps either one for the producer: it answers how many may go now
(``room``), feeds it the answers, and keeps the running sums a report needs (time-weighted
mean limit and outstanding count, answers and their total round trip, the most ever
outstanding), so ``mean limit`` can be compared with ``λ·W`` over any stretch of a run.

Rules: pure; every call takes ``now`` (seconds of one monotonic clock); no randomness.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

LIMIT_ALGORITHMS = ("none", "aimd", "gradient")
DEFAULT_TIMEOUT_S = 5.0  # AIMD: an answer slower than this counts as a loss (Netflix's 5 s)


class AimdLimit:
    """Additive increase, multiplicative decrease.

    >>> limit = AimdLimit(initial=4)
    >>> for i in range(4):
    ...     limit.on_success(now=1.0, rtt=0.01, outstanding=4, sent_at=0.9)
    >>> limit.limit
    5
    >>> limit.on_loss(now=1.1, sent_at=1.0)
    >>> limit.limit
    4
    """

    __slots__ = ("limit", "min_limit", "max_limit", "backoff", "timeout_s", "_good", "_cut_at")
    name = "aimd"

    def __init__(
        self,
        initial: int = 10,
        min_limit: int = 1,
        max_limit: int = 1000,
        backoff: float = 0.9,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.limit = initial
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.backoff = backoff
        self.timeout_s = timeout_s
        self._good = 0
        self._cut_at = -math.inf  # when the limit was last cut

    def on_success(self, now: float, rtt: float, outstanding: int, sent_at: float) -> None:
        if rtt > self.timeout_s:
            self.on_loss(now, sent_at)
            return
        if outstanding * 2 < self.limit:
            return  # the producer is not using its limit: a success says nothing about more
        self._good += 1
        if self._good >= self.limit:
            self._good = 0
            self.limit = min(self.max_limit, self.limit + 1)

    def on_loss(self, now: float, sent_at: float) -> None:
        if sent_at < self._cut_at:
            return  # sent under the old limit: the cut already answered this congestion
        self._cut_at = now
        self._good = 0
        cut = min(self.limit - 1, int(self.limit * self.backoff))
        self.limit = max(self.min_limit, cut)

    def state(self) -> Dict[str, Any]:
        return {"timeout_s": self.timeout_s}


class GradientLimit:
    """The limit follows the ratio of the no-load round trip to the current one.

    >>> limit = GradientLimit(initial=10, window_samples=1, window_s=0.0)
    >>> limit.on_success(now=0.0, rtt=0.1, outstanding=10, sent_at=0.0)
    >>> limit.limit  # rtt == no-load rtt: gradient 1, grows by max(4, sqrt(10))
    14
    """

    __slots__ = (
        "estimate",
        "min_limit",
        "max_limit",
        "tolerance",
        "smoothing",
        "min_queue",
        "window_samples",
        "window_s",
        "probe_windows",
        "rtt_noload",
        "last_rtt",
        "windows",
        "_start",
        "_count",
        "_rtt_sum",
        "_max_outstanding",
        "_dropped",
    )
    name = "gradient"

    def __init__(
        self,
        initial: int = 10,
        min_limit: int = 1,
        max_limit: int = 1000,
        tolerance: float = 2.0,
        smoothing: float = 0.2,
        min_queue: int = 4,
        window_samples: int = 10,
        window_s: float = 0.1,
        probe_windows: int = 1000,
    ) -> None:
        self.estimate = float(initial)
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.tolerance = tolerance
        self.smoothing = smoothing
        self.min_queue = min_queue
        self.window_samples = window_samples
        self.window_s = window_s
        self.probe_windows = probe_windows
        self.rtt_noload = math.inf
        self.last_rtt: Optional[float] = None
        self.windows = 0
        self._start: Optional[float] = None
        self._reset_window()

    @property
    def limit(self) -> int:
        return int(self.estimate)

    def on_success(self, now: float, rtt: float, outstanding: int, sent_at: float) -> None:
        self._count += 1
        self._rtt_sum += rtt
        self._max_outstanding = max(self._max_outstanding, outstanding)
        self._maybe_update(now)

    def on_loss(self, now: float, sent_at: float) -> None:
        self._dropped = True
        self._maybe_update(now)

    def queue_size(self) -> float:
        return max(float(self.min_queue), math.sqrt(self.estimate))

    def state(self) -> Dict[str, Any]:
        noload = self.rtt_noload if math.isfinite(self.rtt_noload) else None
        return {"rtt_noload_s": noload, "window_rtt_s": self.last_rtt, "windows": self.windows}

    def _reset_window(self) -> None:
        self._start = None
        self._count = 0
        self._rtt_sum = 0.0
        self._max_outstanding = 0
        self._dropped = False

    def _maybe_update(self, now: float) -> None:
        if self._start is None:
            self._start = now
        if self._count < self.window_samples or now - self._start < self.window_s:
            return
        rtt = self._rtt_sum / self._count
        dropped, busiest = self._dropped, self._max_outstanding
        self._reset_window()
        self.windows += 1
        self.last_rtt = rtt
        if self.probe_windows and self.windows % self.probe_windows == 0:
            self.rtt_noload = math.inf  # forget it: the next window measures it again
            self.estimate = max(float(self.min_limit), self.queue_size())
            return
        self.rtt_noload = min(self.rtt_noload, rtt)
        self._update(rtt, dropped, busiest)

    def _update(self, rtt: float, dropped: bool, busiest: int) -> None:
        queue = self.queue_size()
        if dropped:
            new = self.estimate / 2
        elif busiest + queue < self.estimate:
            return  # the producer did not use its limit: no evidence for a bigger one
        else:
            gradient = max(0.5, min(1.0, self.tolerance * self.rtt_noload / rtt))
            new = self.estimate * gradient + queue
        if new < self.estimate:  # down gently: one slow window is not a trend
            new = max(self.min_limit, self.estimate * (1 - self.smoothing) + self.smoothing * new)
        self.estimate = max(queue, min(float(self.max_limit), new))


def make_limit(algorithm: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Optional[Any]:
    """The limit algorithm of ``--limit-algorithm`` (None for "none")."""
    if algorithm == "aimd":
        return AimdLimit(timeout_s=timeout_s)
    if algorithm == "gradient":
        return GradientLimit()
    if algorithm == "none":
        return None
    raise ValueError(f"unknown limit algorithm {algorithm!r}")


class LimitGate:
    """The producer's side of a concurrency limit: room to send, answers in, running sums."""

    __slots__ = (
        "algorithm",
        "outstanding",
        "max_outstanding",
        "over_limit",
        "answers",
        "losses",
        "rtt_sum",
        "rtt_min",
        "limit_area",
        "outstanding_area",
        "_since",
        "started",
    )

    def __init__(self, algorithm: Any, now: float) -> None:
        self.algorithm = algorithm
        self.outstanding = 0
        self.max_outstanding = 0
        self.over_limit = 0  # sends that left more outstanding than the limit: must stay 0
        self.answers = 0  # successes with a round trip
        self.losses = 0
        self.rtt_sum = 0.0
        self.rtt_min = math.inf
        self.limit_area = 0.0  # integral of the limit over time
        self.outstanding_area = 0.0
        self._since = now
        self.started = now

    @property
    def limit(self) -> int:
        return self.algorithm.limit

    def room(self, outstanding: int) -> int:
        return max(0, self.algorithm.limit - outstanding)

    def observe(self, now: float, outstanding: int, sending: bool = False) -> None:
        """The outstanding count is now ``outstanding`` (after a send when ``sending``):
        close the time-weighted sums. A send must never leave more than the limit out;
        answers may (the limit can fall below what is already out, which then drains)."""
        self._accumulate(now)
        self.outstanding = outstanding
        if outstanding > self.max_outstanding:
            self.max_outstanding = outstanding
        if sending and outstanding > self.algorithm.limit:
            self.over_limit += 1

    def success(self, now: float, sent_at: float, outstanding: int) -> None:
        rtt = now - sent_at
        self._accumulate(now)
        self.answers += 1
        self.rtt_sum += rtt
        self.rtt_min = min(self.rtt_min, rtt)
        self.algorithm.on_success(now, rtt, outstanding, sent_at)

    def loss(self, now: float, sent_at: float) -> None:
        self._accumulate(now)
        self.losses += 1
        self.algorithm.on_loss(now, sent_at)

    def report(self, now: float) -> Dict[str, Any]:
        """The gate's state and running sums (differences of two reports give the means
        over the stretch between them)."""
        self._accumulate(now)
        state = {
            "algorithm": self.algorithm.name,
            "limit": self.algorithm.limit,
            "outstanding": self.outstanding,
            "max_outstanding": self.max_outstanding,
            "over_limit": self.over_limit,
            "answers": self.answers,
            "losses": self.losses,
            "rtt_sum_s": round(self.rtt_sum, 6),
            "rtt_min_s": self.rtt_min if math.isfinite(self.rtt_min) else None,
            "limit_area": round(self.limit_area, 6),
            "outstanding_area": round(self.outstanding_area, 6),
            "elapsed_s": round(now - self.started, 6),
        }
        state.update(self.algorithm.state())
        return state

    def _accumulate(self, now: float) -> None:
        dt = now - self._since
        if dt > 0:
            self.limit_area += self.algorithm.limit * dt
            self.outstanding_area += self.outstanding * dt
            self._since = now


def stretch(first: Dict[str, Any], last: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """Means between two :meth:`LimitGate.report` s: the limit, the outstanding count,
    the answer rate λ, the mean round trip W and Little's λ·W."""
    dt = last["elapsed_s"] - first["elapsed_s"]
    answers = last["answers"] - first["answers"]
    if dt <= 0 or answers <= 0:
        return {"limit": None, "outstanding": None, "rate": None, "rtt": None, "little": None}
    rate = answers / dt
    rtt = (last["rtt_sum_s"] - first["rtt_sum_s"]) / answers
    return {
        "limit": (last["limit_area"] - first["limit_area"]) / dt,
        "outstanding": (last["outstanding_area"] - first["outstanding_area"]) / dt,
        "rate": rate,
        "rtt": rtt,
        "little": rate * rtt,
    }
