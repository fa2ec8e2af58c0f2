r"""A second reference solution of challenge 12, that measures the speed. DON'T PEEK: try first.

    bplab check 12_adaptive_backpressure \
        --file exercises/solutions/12_adaptive_backpressure_measured.py

The first reference reads ``service_rate_per_s``, which the lab knows exactly. A real
service does not: it measures. This one sizes the queue from ``measured_rate_per_s``, the
messages the worker finished per second of service time over the last half second. It
lags a slowdown by a few observations, which the grader allows for; on the way down it is
still applied at once, with no smoothing of its own.
"""

from lab.core.policies import LoadSignals, OverflowPolicy


class AdaptiveBackpressure(OverflowPolicy):
    """Queue limit = measured speed x latency target x headroom; quartered under memory
    pressure."""

    name = "adaptive-measured"

    HEADROOM = 0.3
    MIN_LIMIT = 2
    MEMORY_SHARE = 0.75
    MEMORY_SHRINK = 4

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
        self.speed = float(process_rate)  # until the first measurement arrives
        self.rss_mb = 0.0

    def observe(self, signals: LoadSignals, now: float) -> None:
        if signals.measured_rate_per_s > 0:
            self.speed = signals.measured_rate_per_s
        self.rss_mb = signals.rss_mb

    def admission_limit(self, buffer) -> int:
        limit = int(self.speed * self.wait_target_s * self.HEADROOM)
        if self.rss_mb > self.memory_budget_mb:
            limit //= self.MEMORY_SHRINK
        limit = max(self.MIN_LIMIT, min(self.capacity, limit))
        return min(limit, buffer.free_slots() + buffer.depth)

    def status(self):
        return {
            "speed": round(self.speed, 1),
            "memory_pressure": self.rss_mb > self.memory_budget_mb,
        }
