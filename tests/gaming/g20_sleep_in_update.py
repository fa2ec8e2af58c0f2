"""20, blocks the producer: a rule that follows lag well enough, but sleeps in every call
to update() (to "let the consumer catch up")."""

import time


class Sleepy:
    def __init__(self, target_lag_s=2.0, rate=4000.0):
        self.target = target_lag_s / 4
        self.ceiling = rate
        self.rate = 200.0

    def update(self, lag_s, lag_messages, now):
        time.sleep(0.06)
        if lag_s is not None and lag_s > self.target:
            self.rate = max(50.0, self.rate * 0.7)
        else:
            self.rate = min(self.ceiling, self.rate + 100.0)
        return self.rate
