"""12, degenerate: a limit of 0, so every message is dropped."""

from lab.core.policies import OverflowPolicy


class DropEverything(OverflowPolicy):
    def admission_limit(self, buffer):
        return 0
