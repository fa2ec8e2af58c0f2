"""13, degenerate: accept while there is room, FIFO, never make room for a checkout."""

from lab.core.policies import OverflowPolicy


class TailDrop(OverflowPolicy):
    discipline = "priority"
