"""17, never behind: as many workers as the pool allows, whatever the lag."""


class Scaler:
    def __init__(self, maximum=12):
        self.maximum = maximum

    def decide(self, workers, lag_s, now):
        return self.maximum
