"""12, recognises the probe and applies the memory rule only there: the probe's signals are
made up (processed_per_s equals service_rate_per_s exactly), a real run's are measured."""

from lab.core.policies import OverflowPolicy


class ProbeDetector(OverflowPolicy):
    def __init__(self, capacity=50, process_rate=10.0, wait_target_s=0.25, max_memory_mb=512.0):
        self.capacity = capacity
        self.target = wait_target_s
        self.budget = 0.75 * max_memory_mb
        self.limit = max(2, int(process_rate * wait_target_s * 0.3))

    def observe(self, signals, now):
        limit = int(signals.service_rate_per_s * self.target * 0.3)
        in_probe = signals.processed_per_s == signals.service_rate_per_s
        if in_probe and signals.rss_mb > self.budget:
            limit //= 4
        self.limit = max(2, min(self.capacity, limit))

    def admission_limit(self, buffer):
        return min(self.limit, buffer.free_slots() + buffer.depth)
