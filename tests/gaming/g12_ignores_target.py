"""12, constants that ignore wait_target_s and max_memory_mb: a fixed 0.1 s horizon and a
fixed 300 MB memory budget."""

from lab.core.policies import OverflowPolicy


class IgnoresTarget(OverflowPolicy):
    limit = 10

    def observe(self, signals, now):
        limit = int(signals.service_rate_per_s * 0.1)
        if signals.rss_mb > 300:
            limit //= 4
        self.limit = max(2, limit)

    def admission_limit(self, buffer):
        return min(self.limit, buffer.free_slots() + buffer.depth)
