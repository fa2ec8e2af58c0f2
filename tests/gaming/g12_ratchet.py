"""12, a ratchet: shrinks with the speed and the memory, and never grows back."""

from lab.core.policies import OverflowPolicy


class Ratchet(OverflowPolicy):
    def __init__(self, capacity=50, process_rate=10.0, wait_target_s=0.25, max_memory_mb=512.0):
        self.capacity = capacity
        self.target = wait_target_s
        self.budget = 0.75 * max_memory_mb
        self.limit = max(2, int(process_rate * wait_target_s * 0.3))

    def observe(self, signals, now):
        limit = int(signals.service_rate_per_s * self.target * 0.3)
        if signals.rss_mb > self.budget:
            limit //= 4
        self.limit = max(2, min(self.limit, limit))

    def admission_limit(self, buffer):
        return min(self.limit, buffer.free_slots() + buffer.depth)
