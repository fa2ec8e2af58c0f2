"""18, the window is the whole buffer (1000): never starved, and far more in flight than
any round trip needs."""

from lab.core.policies import BlockPolicy


class Window(BlockPolicy):
    def admission_limit(self, buffer):
        return buffer.free_slots() + buffer.depth
