"""Reference solution of challenge 12 (adaptive backpressure). DON'T PEEK: try first.

    bplab check 12_adaptive_backpressure --file exercises/solutions/12_adaptive_backpressure.py

The limit follows Little's law: a queue of L messages in front of a worker doing R msg/s
makes the newest one wait about L / R seconds, so L = R x target keeps the wait at the
target. Using 30 % of it leaves headroom for the moment the worker slows down: the messages
already queued were accepted at the old speed, and a shorter queue makes their extra wait
shorter. The limit is recomputed on every observe() and applied at once, both ways.
"""

import math

from lab.core.policies import LoadSignals, OverflowPolicy


class AdaptiveBackpressure(OverflowPolicy):
    """Queue limit = speed x latency target x headroom; halved twice under memory pressure."""

    name = "adaptive"

    HEADROOM = 0.3  # use 30 % of the target: room for a sudden slowdown
    MIN_LIMIT = 2  # one in service, one waiting: the worker never idles for lack of work
    MEMORY_SHARE = 0.75  # RSS above this share of the memory guard is pressure
    MEMORY_SHRINK = 4  # under pressure, keep a quarter of the queue

    def __init__(
        self,
        capacity: int = 50,
        process_rate: float = 10.0,
        wait_target_s: float = 0.25,
        max_memory_mb: float = 512.0,
    ) -> None:
        self.capacity = capacity
        self.wait_target_s = wait_target_s or 0.25
        self.memory_budget_mb = self.MEMORY_SHARE * max_memory_mb
        self.under_pressure = False
        self.limit = self._size(process_rate, rss_mb=0.0)

    def observe(self, signals: LoadSignals, now: float) -> None:
        self.limit = self._size(signals.service_rate_per_s, signals.rss_mb)

    def admission_limit(self, buffer) -> int:
        return min(self.limit, buffer.free_slots() + buffer.depth)

    def status(self):
        return {"limit": self.limit, "memory_pressure": self.under_pressure}

    def _size(self, service_rate: float, rss_mb: float) -> int:
        if service_rate is None or math.isinf(service_rate):
            return self.capacity  # a worker with no limit never makes anyone wait
        limit = int(service_rate * self.wait_target_s * self.HEADROOM)
        self.under_pressure = rss_mb > self.memory_budget_mb
        if self.under_pressure:
            limit //= self.MEMORY_SHRINK
        return max(self.MIN_LIMIT, min(self.capacity, limit))
