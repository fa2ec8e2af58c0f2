"""Reference solution of challenge 18 (the window over a slow link). DON'T PEEK: try first.

    bplab check 18_window --file exercises/solutions/18_window.py

The worker finishes R messages a second, and a credit's trip around the loop takes the
measured round trip (grant out, data back) plus one service: so R x (round trip + 1/R)
messages must be in flight to keep it busy, the bandwidth-delay product. Twice that
leaves room for a loop that turns late on a busy machine, and stays well inside the
grader's bound of three. The consumer's round trip is the smallest of its last half
second, so the window grows within half a second of a slower link and shrinks at the
first sample of a faster one.
"""

import math

from lab.core.policies import BlockPolicy, LoadSignals


class Window(BlockPolicy):
    """Window = headroom x rate x (measured round trip + one service), within the buffer."""

    name = "window"

    HEADROOM = 2.0  # bandwidth-delay products in flight
    FIRST_WINDOW = 10  # before the first round trip is measured

    def __init__(self, capacity: int = 1000, process_rate: float = 1000.0) -> None:
        self.capacity = capacity
        self.process_rate = process_rate
        self.window = min(capacity, self.FIRST_WINDOW)

    def observe(self, signals: LoadSignals, now: float) -> None:
        rate = signals.service_rate_per_s
        if signals.round_trip_s is None or rate is None or math.isinf(rate) or rate <= 0:
            return  # nothing measured yet, or a worker that never waits: keep the window
        needed = rate * (signals.round_trip_s + 1.0 / rate)
        self.window = max(1, min(self.capacity, math.ceil(self.HEADROOM * needed)))

    def admission_limit(self, buffer) -> int:
        return min(self.window, buffer.free_slots() + buffer.depth)

    def status(self):
        return {"window": self.window}
