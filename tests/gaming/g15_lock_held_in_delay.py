"""15, hangs inside a C call that keeps Python's lock: no other thread runs, not even the
lab's watchdog (a sum of ten trillion numbers, all in C)."""


class Sums:
    def delay(self, attempt, retry_after_s, now):
        return self.total() * 0 + retry_after_s

    def total(self):
        return sum(range(10**13))
