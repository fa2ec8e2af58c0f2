"""Reference solution for challenge 17 (DON'T PEEK). Fast up to the knee, probing down.

A message needs 1/mu of a worker's time and then 1/C at the database, so n workers do
n / (1/mu + 1/C) a second until the database is full: the knee is the first n where that
reaches C, ceil(C/mu + 1) (4 here). Beyond it every extra caller slows the database down.

Up: once lag passes a quarter of the target, double the pool (never past the knee); lag in
seconds is late, so do not wait for more. Down: after half a second with lag near zero, try
one worker fewer, and wait another half second before the next; if that was too few, lag grows and
the rule goes back up.
"""

import math

CALM_S = 0.05  # lag this small means no queue to speak of
PROBE_EVERY_S = 0.5


class Scaler:
    """Lag in, workers out: double up to the knee, step down one at a time."""

    def __init__(
        self,
        lag_target_s: float = 1.5,
        process_rate: float = 100.0,
        db_capacity: float = 250.0,
        minimum: int = 1,
        maximum: int = 12,
    ) -> None:
        self.lag_target_s = lag_target_s
        self.minimum = minimum
        self.knee = max(minimum, min(maximum, math.ceil(db_capacity / process_rate + 1)))
        self.calm_since = None

    def decide(self, workers: int, lag_s: float, now: float) -> int:
        if lag_s > self.lag_target_s / 4:
            self.calm_since = None
            return min(self.knee, max(workers + 1, 2 * workers))
        if lag_s > CALM_S:
            self.calm_since = None
            return min(workers, self.knee)
        if self.calm_since is None:
            self.calm_since = now
        if now - self.calm_since >= PROBE_EVERY_S and workers > self.minimum:
            self.calm_since = now
            return workers - 1
        return min(workers, self.knee)
