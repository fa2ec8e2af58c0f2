"""13, drops all optional traffic at all times (and does the rest right)."""

from lab.core.policies import ACCEPT, ACCEPT_EVICTING_OLDEST, DROP, OverflowPolicy


class NoOptional(OverflowPolicy):
    discipline = "priority"

    def decide(self, message, buffer, now):
        if message.priority == 2:
            return DROP
        if buffer.depth < self.admission_limit(buffer):
            return ACCEPT
        if message.priority == 0 and sum(buffer.waiting_by_class()[1:]) > 0:
            return ACCEPT_EVICTING_OLDEST
        return DROP
