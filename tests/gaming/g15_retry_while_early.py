"""15, retries only while now < 1.5 (the old probe's clock), never in a real storm."""

import random


class EarlyOnly:
    def __init__(self, seed=0):
        self.rng = random.Random(seed)

    def delay(self, attempt, retry_after_s, now):
        if now < 1.5:
            return max(retry_after_s, self.rng.random() * 0.5 * 2 ** (attempt - 1))
        return None
