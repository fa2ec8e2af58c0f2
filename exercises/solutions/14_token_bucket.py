"""Reference solution of challenge 14 (token bucket). DON'T PEEK: try first.

    bplab check 14_token_bucket --file exercises/solutions/14_token_bucket.py

In any one second a token bucket lets through at most BURST + RATE messages: the tokens
saved up, plus those earned during the second. The consumer can take 100 a second, so
BURST + RATE must stay at 100 (95 leaves room for arrival jitter). Within that sum, a
high rate drains the spike's backlog fastest; a small burst still absorbs the jitter of
the producer's own loop. After the spike the bucket refills at RATE - 30 (the base
traffic) messages a second, which is what empties the outbox.
"""


class SpikeLimiter:
    """A token bucket: bursts of up to BURST, at most RATE a second on average."""

    RATE = 85.0
    BURST = 10

    def __init__(self, now: float = 0.0) -> None:
        self.rate = self.RATE
        self.capacity = self.BURST
        self._tokens = float(self.BURST)
        self._updated = now

    def take_up_to(self, now: float, count: int) -> int:
        self._refill(now)
        taken = min(count, int(self._tokens))
        self._tokens -= taken
        return taken

    def time_until(self, now: float) -> float:
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) / self.rate)

    def tokens(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
