"""16, blocks the consumer: the reference's rule, but it sleeps in every observe() (to "let
the queue build up")."""

import math
import time


class Batcher:
    def __init__(self, batch_overhead_ms=8.0, item_ms=2.0, batch_max=200):
        self.overhead_s, self.item_s = batch_overhead_ms / 1000, item_ms / 1000
        self.maximum = batch_max
        self.size = 1
        self.seen = []

    def batch_size(self):
        return self.size

    def observe(self, size, duration_s, now):
        time.sleep(0.02)
        self.seen = [(t, n) for t, n in self.seen if t > now - 0.5] + [(now, size)]
        rate = 1.5 * sum(n for _, n in self.seen) / 0.5
        if rate * self.item_s >= 1:
            self.size = self.maximum
        else:
            wanted = math.ceil(rate * self.overhead_s / (1 - rate * self.item_s))
            self.size = min(self.maximum, max(1, wanted, 2 * self.size if size >= self.size else 1))
