"""Challenge 14: a token bucket in the producer. Your file: edit it, then run

    bplab check 14_token_bucket

The producer asks its limiter, every time it could send:

* ``take_up_to(now, count)``: "I have ``count`` messages ready; how many may go now?"
  Return a whole number between 0 and ``count`` (and remember you spent them);
* ``time_until(now)``: "how many seconds until the next one may go?" (0 if one may go
  now). The producer sleeps that long instead of asking again in a busy loop.

Messages that may not go yet wait in the producer's outbox, in order; none is lost.
``now`` is the producer's clock in seconds (it only moves forward). ``consumer_rate`` is
what the consumer can take in this run, in messages a second: the check draws it.

A token bucket holds at most ``capacity`` tokens and gains ``rate`` tokens a second; each
message spends one. As it stands this class lets everything through at once (it never
counts tokens), and its two numbers are a first guess. Run the check and see.
"""


class SpikeLimiter:
    """A token bucket: bursts of up to ``capacity``, at most ``rate`` a second on average."""

    def __init__(self, now: float = 0.0, consumer_rate: float = 100.0) -> None:
        self.rate = consumer_rate  # TODO 2: tokens per second
        self.capacity = int(consumer_rate)  # TODO 2: the biggest burst let through at once
        self._tokens = float(self.capacity)  # a bucket starts full
        self._updated = now

    def take_up_to(self, now: float, count: int) -> int:
        """TODO 1: refill the tokens earned since the last call (never above the
        capacity), then spend as many whole tokens as there are, at most ``count``."""
        return count

    def time_until(self, now: float) -> float:
        """TODO 1: seconds until one whole token is there (0 if one is)."""
        return 0.0

    def tokens(self, now: float) -> float:
        """How full the bucket is (the dashboard shows it)."""
        return self._tokens
