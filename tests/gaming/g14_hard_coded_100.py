"""14, a right token bucket sized for a 100 msg/s consumer, ignoring the consumer_rate it is
given: rate 85 and burst 10 let 95 a second through a consumer that takes 60."""


class HardCoded:
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
        taken = min(count, int(self._tokens))
        self._tokens -= taken
        return taken

    def time_until(self, now):
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) / self.rate)
