"""12, hard-coded steps: a limit of 12, or 3 under memory pressure, whatever the speed."""

from lab.core.policies import OverflowPolicy


class HardCoded(OverflowPolicy):
    def __init__(self, max_memory_mb: float = 512.0) -> None:
        self.budget = 0.75 * max_memory_mb
        self.limit = 12

    def observe(self, signals, now):
        self.limit = 3 if signals.rss_mb > self.budget else 12

    def admission_limit(self, buffer):
        return min(self.limit, buffer.free_slots() + buffer.depth)
