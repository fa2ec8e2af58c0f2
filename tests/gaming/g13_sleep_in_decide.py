"""13, blocks the consumer: the reference's decisions, after a 5 ms sleep per message."""

import time

from lab.core.policies import ACCEPT, ACCEPT_EVICTING_OLDEST, DROP, OverflowPolicy


class Sleepy(OverflowPolicy):
    discipline = "priority"

    def decide(self, message, buffer, now):
        time.sleep(0.005)
        if buffer.depth < self.admission_limit(buffer):
            return ACCEPT
        if message.priority == 0 and sum(buffer.waiting_by_class()[1:]) > 0:
            return ACCEPT_EVICTING_OLDEST
        return DROP
