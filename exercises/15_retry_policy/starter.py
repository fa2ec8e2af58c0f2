"""Challenge 15: a retry policy that does not keep the system down. Your file: edit it,
then run

    bplab check 15_retry_policy

The producer asks your policy what to do each time an attempt fails: the consumer shed it
("busy, retry after ``retry_after_s``"), or no "processed" came within the timeout.

* ``delay(attempt, retry_after_s, now)``: seconds to wait before retry number ``attempt``
  (1 = the first retry), or ``None`` to give the request up. The producer gives up by
  itself after 6 attempts, or when a retry would land past the request's deadline.
* ``on_success(now)`` and ``on_failure(now)`` (optional): called for every attempt that
  succeeded or failed, so your policy can see how things are going.

``now`` is the producer's clock in seconds. As it stands, every failure is retried at
once: the module 15 default. Run the check and watch the spike outlive itself.
"""

import random


class PoliteRetry:
    """Retry when it helps; back off, and stop retrying while the consumer is drowning."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)  # for jitter: random.Random(seed).random() in [0, 1)

    def delay(self, attempt: int, retry_after_s: float, now: float):
        """TODO 1: wait at least ``retry_after_s``, and more on each attempt
                   (exponential backoff with jitter).
        TODO 2: return None (give up) while most recent attempts fail: a retry budget
                (retries allowed only as a small share of recent successes) or a circuit
                breaker; see on_success and on_failure.
        """
        return 0.0

    def on_success(self, now: float) -> None:
        """An attempt succeeded."""

    def on_failure(self, now: float) -> None:
        """An attempt failed (shed, or timed out)."""
