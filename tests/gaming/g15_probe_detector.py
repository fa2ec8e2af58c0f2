"""15, detects the probe by its clock: the probe's made-up clock is far from the process's
own perf_counter (the real producer's clock), so it is polite there and retries at once in
the real run."""

import time


class TwoFaced:
    BUDGET = 10.0

    def __init__(self):
        self.tokens = self.BUDGET

    def delay(self, attempt, retry_after_s, now):
        if abs(now - time.perf_counter()) < 1.0:
            return 0.0  # the real run: straight back, sooner than the retry-after
        if self.tokens < 1.0:
            return None
        self.tokens -= 1.0
        return retry_after_s * 1.5

    def on_success(self, now):
        self.tokens = min(self.BUDGET, self.tokens + 0.1)
