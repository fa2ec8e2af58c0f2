"""12, a tiny fixed queue: 4 when fast, 2 when slow (short waits, but no use of a fast worker)."""

from lab.core.policies import OverflowPolicy


class Tiny(OverflowPolicy):
    def __init__(self, process_rate: float = 100.0) -> None:
        self.nominal = process_rate
        self.limit = 4

    def observe(self, signals, now):
        self.limit = 4 if signals.service_rate_per_s >= 0.9 * self.nominal else 2

    def admission_limit(self, buffer):
        return min(self.limit, buffer.free_slots() + buffer.depth)
