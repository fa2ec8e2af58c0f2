"""13, hangs in the real run inside a C call that keeps Python's lock: decide() sums ten
trillion numbers in C, so not even the lab's watchdog thread runs."""

from lab.core.policies import OverflowPolicy


class Sums(OverflowPolicy):
    def decide(self, message, buffer, now):
        return sum(range(10**13))
