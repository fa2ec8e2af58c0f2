"""Reference solution of challenge 13 (priority shedding). DON'T PEEK: try first.

    bplab check 13_priority_shedding --file exercises/solutions/13_priority_shedding.py

Two changes to tail drop. The worker serves class 0 first (the priority discipline), so a
checkout waits only behind other checkouts; they are 10% of the traffic, well within the
worker's speed, so that wait stays short. And a full buffer no longer refuses a checkout
while a browse or a recommendation waits: the least important waiting message is evicted
to make room. Everything else is still served whenever there is room, so the worker stays
busy through the spike.
"""

from lab.core.buffer import Buffer, Message
from lab.core.policies import ACCEPT, ACCEPT_EVICTING_OLDEST, DROP, OverflowPolicy

CRITICAL = 0


class CriticalFirst(OverflowPolicy):
    """Serve critical first; a critical arrival evicts lesser waiting work when full."""

    name = "critical-first"
    discipline = "priority"

    def decide(self, message: Message, buffer: Buffer, now: float) -> str:
        if buffer.depth < self.admission_limit(buffer):
            return ACCEPT
        if message.priority == CRITICAL and sum(buffer.waiting_by_class()[1:]) > 0:
            return ACCEPT_EVICTING_OLDEST
        return DROP
