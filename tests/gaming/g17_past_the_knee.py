"""17, blind to the database: doubles the pool whenever any queue shows (lag over 0.1 s) and
gives one worker back after a calm second, like a rule that has never heard of a knee: up
to the pool's maximum."""


class Scaler:
    def __init__(self, minimum=1, maximum=12):
        self.minimum, self.maximum = minimum, maximum
        self.calm_since = None

    def decide(self, workers, lag_s, now):
        if lag_s > 0.1:
            self.calm_since = None
            return min(self.maximum, 2 * workers)
        if self.calm_since is None:
            self.calm_since = now
        if now - self.calm_since >= 1.0 and workers > self.minimum:
            self.calm_since = now
            return workers - 1
        return workers
