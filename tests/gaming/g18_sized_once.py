"""18, sized once: the bandwidth-delay product of the first round trip measured a second
after the start, kept for ever (the link's delay changes later)."""

import math

from lab.core.policies import BlockPolicy


class Window(BlockPolicy):
    def __init__(self, capacity=1000):
        self.capacity = capacity
        self.window = 10
        self.started = None
        self.sized = False

    def observe(self, signals, now):
        if self.started is None:
            self.started = now
        if self.sized or now - self.started < 1.0 or signals.round_trip_s is None:
            return
        rate = signals.service_rate_per_s
        self.window = min(self.capacity, math.ceil(2 * rate * (signals.round_trip_s + 1 / rate)))
        self.sized = True

    def admission_limit(self, buffer):
        return min(self.window, buffer.free_slots() + buffer.depth)
