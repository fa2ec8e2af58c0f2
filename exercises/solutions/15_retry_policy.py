"""Reference solution of challenge 15 (retry policy). DON'T PEEK: try first.

    bplab check 15_retry_policy --file exercises/solutions/15_retry_policy.py

Two ideas. Backoff with full jitter, never sooner than the consumer's retry-after, spreads
the retries out. And a retry budget: each retry spends a token, each success earns a tenth
of one, and the budget holds at most ten. When things are calm a failed request is
retried; when most attempts fail the budget is soon empty and failures are given up at
once, so the consumer sees only fresh traffic and drains its backlog. That is what lets
the system recover once the spike is over: the retries stop feeding the overload.
"""

import random


class PoliteRetry:
    """Backoff with full jitter, honouring retry-after, spending from a retry budget."""

    BASE_S = 0.5  # the first retry's ceiling
    CAP_S = 2.0  # below the shortest deadline (2.5 s): a longer wait never lands in time
    BUDGET = 10.0  # at most this many retries saved up
    EARN_PER_SUCCESS = 0.1  # retries stay at most ~10% of successes

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.tokens = self.BUDGET

    def delay(self, attempt: int, retry_after_s: float, now: float):
        if self.tokens < 1.0:
            return None  # over budget: give up, do not pile on
        self.tokens -= 1.0
        ceiling = min(self.CAP_S, self.BASE_S * 2 ** (attempt - 1))
        return max(retry_after_s, self.rng.random() * ceiling)

    def on_success(self, now: float) -> None:
        self.tokens = min(self.BUDGET, self.tokens + self.EARN_PER_SUCCESS)

    def on_failure(self, now: float) -> None:
        """Failures spend nothing by themselves; only the retries they ask for do."""
