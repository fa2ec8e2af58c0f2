"""20, learned once: a rate that suits the group before it slows down, and never listens to
lag again."""


class ConstantRate:
    def __init__(self, target_lag_s=2.0, rate=4000.0):
        self.rate = 900.0

    def update(self, lag_s, lag_messages, now):
        return self.rate
