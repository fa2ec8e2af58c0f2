"""17, never pays: one worker, whatever the lag."""


class Scaler:
    def decide(self, workers, lag_s, now):
        return 1
