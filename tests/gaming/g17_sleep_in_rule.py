"""17, blocks the consumer: a rule that scales well enough, but sleeps in every call to
decide() (to "let the new workers warm up")."""

import time


class Scaler:
    def __init__(self, lag_target_s=1.5):
        self.target = lag_target_s

    def decide(self, workers, lag_s, now):
        time.sleep(0.03)
        if lag_s > self.target / 4:
            return min(4, 2 * workers)
        if lag_s < 0.05 and workers > 1:
            return workers - 1
        return workers
