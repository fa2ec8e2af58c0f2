"""14, blocks the producer: a right token bucket whose take_up_to() sleeps until a token is
there instead of answering 0."""

import time


class Sleeping:
    RATE = 85.0
    BURST = 10

    def __init__(self, now=0.0):
        self.rate, self.capacity = self.RATE, self.BURST
        self._tokens, self._updated = float(self.BURST), now

    def _refill(self, now):
        if now > self._updated:
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    def take_up_to(self, now, count):
        self._refill(now)
        if self._tokens < 1:
            wait = (1 - self._tokens) / self.rate
            time.sleep(wait)
            self._refill(now + wait)
        taken = min(count, int(self._tokens))
        self._tokens -= taken
        return taken

    def time_until(self, now):
        return 0.0
