"""12, breaks the grader: an endless loop inside observe()."""

from lab.core.policies import OverflowPolicy


class Spins(OverflowPolicy):
    def observe(self, signals, now):
        while True:
            pass
