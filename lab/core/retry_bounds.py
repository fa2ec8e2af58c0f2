"""Each delay a retry policy returned, held against the bounds in force when it returned it.

The consumer's retry-after is the soonest a retry may go (sooner is refused again); the
request's deadline is the longest any retry may wait (a delay longer than the whole deadline
can never land in time). :class:`RetryBounds` counts the delays that broke either bound and
keeps the extreme shares, so ``bplab check`` grades the real run's delays, not only the
probe's made-up questions. Pure: the tracker gives it every number.
"""

from __future__ import annotations

from typing import Any, Dict, Optional


class RetryBounds:
    """Delays against their retry-after and deadline (see the module docstring)."""

    def __init__(self) -> None:
        self.delays = 0
        self.early = 0  # sooner than the retry-after in force
        self.late = 0  # longer than the request's whole deadline
        self.soonest_share: Optional[float] = None  # min delay / retry-after, %
        self.latest_share: Optional[float] = None  # max delay / deadline, %

    def record(self, delay: float, retry_after_s: float, deadline_s: Optional[float]) -> None:
        """One delay the policy returned (None, giving up, is no delay)."""
        self.delays += 1
        if retry_after_s > 0:
            share = delay / retry_after_s * 100.0
            self.soonest_share = (
                share if self.soonest_share is None else min(share, self.soonest_share)
            )
            if share < 100.0:  # the share as graded, so count and row agree
                self.early += 1
        if deadline_s is not None and deadline_s > 0:
            share = delay / deadline_s * 100.0
            self.latest_share = (
                share if self.latest_share is None else max(share, self.latest_share)
            )
            if share > 100.0:
                self.late += 1

    def as_dict(self) -> Dict[str, Any]:
        return {
            "delays": self.delays,
            "early": self.early,
            "late": self.late,
            "soonest_share": self.soonest_share,
            "latest_share": self.latest_share,
        }
