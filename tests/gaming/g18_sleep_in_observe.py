"""18, blocks the consumer: the reference's window, but it sleeps in every observe() (to
"wait for a fresh round trip")."""

import math
import time

from lab.core.policies import BlockPolicy


class Window(BlockPolicy):
    def __init__(self, capacity=1000):
        self.capacity = capacity
        self.window = 10

    def observe(self, signals, now):
        time.sleep(0.02)
        rate = signals.service_rate_per_s
        if signals.round_trip_s is not None:
            needed = rate * (signals.round_trip_s + 1 / rate)
            self.window = min(self.capacity, math.ceil(2 * needed))

    def admission_limit(self, buffer):
        return min(self.window, buffer.free_slots() + buffer.depth)
