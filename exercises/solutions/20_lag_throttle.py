"""Reference solution for challenge 20 (DON'T PEEK). A target-lag rule.

What left the stream since the last reading is what was sent minus the backlog's growth:
that is the group's speed, whatever it is today. Send that, plus a correction that closes
the gap to a small backlog within a second. Aim far under the graded target: lag in seconds
is a late signal (the age of the oldest entry grows only at 1 - drain/rate s per second).
"""


class LagRule:
    """Lag in, rate out: the measured drain rate, plus a correction towards a small backlog."""

    def __init__(self, target_lag_s: float = 2.0, rate: float = 4000.0) -> None:
        self.aim_s = target_lag_s / 10
        self.max_rate = rate
        self.rate = min(100.0, rate)
        self.drain = None
        self.last_backlog = None
        self.last_now = None

    def update(self, lag_s, lag_messages, now: float) -> float:
        if lag_s is None or lag_messages is None:
            return self.rate
        if self.last_backlog is not None and now > self.last_now:
            left = max(0.0, self.rate - (lag_messages - self.last_backlog) / (now - self.last_now))
            self.drain = left if self.drain is None else self.drain + 0.4 * (left - self.drain)
        self.last_backlog, self.last_now = lag_messages, now
        if self.drain is None:
            return self.rate
        wanted = self.drain + (self.drain * self.aim_s - lag_messages) / 1.0
        if lag_s < self.aim_s / 2:
            wanted = max(wanted, self.rate * 1.2)  # the group may be idle: ask for more
        self.rate = max(1.0, min(self.max_rate, wanted, 2 * self.rate))
        return self.rate
