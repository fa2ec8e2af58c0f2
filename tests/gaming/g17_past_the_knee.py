"""17, blind to the database: doubles the pool whenever anything waits at all (any lag) and
gives one worker back after a calm second, like a rule that has never heard of a knee: up
to the pool's maximum. (At four workers, the knee, the step's queue still shows now and
then, so the rule always goes past it.)"""


class Scaler:
    def __init__(self, minimum=1, maximum=12):
        self.minimum, self.maximum = minimum, maximum
        self.calm_since = None

    def decide(self, workers, lag_s, now):
        if lag_s > 0.0:
            self.calm_since = None
            return min(self.maximum, 2 * workers)
        if self.calm_since is None:
            self.calm_since = now
        if now - self.calm_since >= 1.0 and workers > self.minimum:
            self.calm_since = now
            return workers - 1
        return workers
