"""18, a fixed window of 20: plenty over the short delay, far too few over the long one."""

from lab.core.policies import BlockPolicy


class Window(BlockPolicy):
    def admission_limit(self, buffer):
        return min(20, buffer.free_slots() + buffer.depth)
