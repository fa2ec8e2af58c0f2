"""17, blind to the database: adds four workers whenever anything waits at all and never
gives one back, like a rule that has never heard of a knee. The first queue it sees, at one
worker or at the step, takes it past four workers."""


class Scaler:
    def __init__(self, minimum=1, maximum=12):
        self.minimum, self.maximum = minimum, maximum

    def decide(self, workers, lag_s, now):
        if lag_s > 0.0:
            return min(self.maximum, workers + 4)
        return workers
