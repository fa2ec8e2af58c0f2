"""15, breaks the grader: an endless loop inside delay()."""


class Spins:
    def delay(self, attempt, retry_after_s, now):
        while True:
            pass
