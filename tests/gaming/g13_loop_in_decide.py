"""13, breaks the grader: an endless loop inside decide() (only the real consumer calls it)."""

from lab.core.policies import OverflowPolicy


class Spins(OverflowPolicy):
    def decide(self, message, buffer, now):
        while True:
            pass
