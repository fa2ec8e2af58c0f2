"""12, recognises the probe and applies the memory rule only there: the probe's signals are
made up (the oldest message's age equals the queue-wait p99 exactly), a real run's are
measured."""

from lab.core.policies import OverflowPolicy


class ProbeDetector(OverflowPolicy):
    def __init__(self, capacity=50, process_rate=10.0, wait_target_s=0.25, max_memory_mb=512.0):
        self.capacity = capacity
        self.target = wait_target_s
        self.budget = 0.75 * max_memory_mb
        self.limit = max(2, int(process_rate * wait_target_s * 0.3))

    def observe(self, signals, now):
        limit = int(signals.service_rate_per_s * self.target * 0.3)
        in_probe = signals.depth > 0 and signals.oldest_age_s == signals.queue_wait_p99_s
        if in_probe and signals.rss_mb > self.budget:
            limit //= 4
        self.limit = max(2, min(self.capacity, limit))

    def admission_limit(self, buffer):
        return min(self.limit, buffer.free_slots() + buffer.depth)
