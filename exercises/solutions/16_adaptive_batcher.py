"""Reference solution for challenge 16 (DON'T PEEK). A queue-aware batch size.

The messages finished in the last half second are the arrival rate, as long as the worker
keeps up: use the smallest batch whose throughput, b / (O + b * I), clears that rate with
a quarter to spare (never asking for more than 95 % of 1 / I). When batches come back full
and one right after another, twice running, the queue is ahead of the estimate: double the
size at once, up to the bound. (Once only is a clump of two messages, not a burst.)
"""

import math
from collections import deque

WINDOW_S = 0.5
HEADROOM = 1.25
MOST = 0.95  # of 1 / I: the bigger the batch the closer to it, never quite there


class Batcher:
    """Batches seen in, next batch size out: sized from the measured rate."""

    def __init__(
        self, batch_overhead_ms: float = 8.0, item_ms: float = 2.0, batch_max: int = 200
    ) -> None:
        self.overhead_s = batch_overhead_ms / 1000
        self.item_s = item_ms / 1000
        self.maximum = batch_max
        self.size = 1
        self.recent = deque()  # (finish time, messages)
        self.in_window = 0
        self.last_finish = None
        self.full_runs = 0  # full batches in a row, each started as the last one ended

    def batch_size(self) -> int:
        return self.size

    def needed(self, rate: float) -> int:
        """The smallest b with b / (O + b * I) >= rate."""
        rate = min(rate, MOST / self.item_s)
        return max(1, math.ceil(rate * self.overhead_s / (1 - rate * self.item_s)))

    def observe(self, size: int, duration_s: float, now: float) -> None:
        back_to_back = self.last_finish is not None and now - duration_s - self.last_finish < 0.001
        self.last_finish = now
        self.recent.append((now, size))
        self.in_window += size
        while self.recent and self.recent[0][0] <= now - WINDOW_S:
            self.in_window -= self.recent.popleft()[1]
        wanted = self.needed(HEADROOM * self.in_window / WINDOW_S)
        self.full_runs = self.full_runs + 1 if back_to_back and size >= self.size else 0
        if self.full_runs >= 2:
            wanted = max(wanted, 2 * self.size)
        self.size = min(self.maximum, wanted)
