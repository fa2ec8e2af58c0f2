"""Reference solution of challenge 14 (token bucket). DON'T PEEK: try first.

    bplab check 14_token_bucket --file exercises/solutions/14_token_bucket.py

In any one second a token bucket lets through at most burst + rate messages: the tokens
saved up, plus those earned during the second. The consumer can take ``consumer_rate`` a
second, so burst + rate must stay at or under it (95 % leaves room for the producer's
loop jitter). Within that sum, a high rate drains the spike's backlog fastest; a small
burst still absorbs that jitter. After the spike the outbox empties at the rate minus the
base traffic.
"""


class SpikeLimiter:
    """A token bucket: bursts of up to ``capacity``, at most ``rate`` a second on average."""

    RATE_SHARE = 0.85  # of the consumer's capacity
    BURST_SHARE = 0.10

    def __init__(self, now: float = 0.0, consumer_rate: float = 100.0) -> None:
        self.rate = self.RATE_SHARE * consumer_rate
        self.capacity = max(1, int(self.BURST_SHARE * consumer_rate))
        self._tokens = float(self.capacity)
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
