"""17, blind to the database: doubles while lag is above a quarter of the target and
probes down when it is calm, like the reference, but with no knee: up to the pool's
maximum."""


class Scaler:
    def __init__(self, lag_target_s=1.5, minimum=1, maximum=12):
        self.target, self.minimum, self.maximum = lag_target_s, minimum, maximum
        self.calm_since = None

    def decide(self, workers, lag_s, now):
        if lag_s > self.target / 4:
            self.calm_since = None
            return min(self.maximum, 2 * workers)
        if lag_s > 0.05:
            self.calm_since = None
            return workers
        if self.calm_since is None:
            self.calm_since = now
        if now - self.calm_since >= 1.0 and workers > self.minimum:
            self.calm_since = now
            return workers - 1
        return workers
