"""13, degenerate: drop everything."""

from lab.core.policies import DROP, OverflowPolicy


class DropEverything(OverflowPolicy):
    def decide(self, message, buffer, now):
        return DROP
