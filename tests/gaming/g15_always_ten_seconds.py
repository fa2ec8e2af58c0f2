"""15, returns 10.0 always: every retry lands past the deadline, so nothing is retried."""


class TenSeconds:
    def delay(self, attempt, retry_after_s, now):
        return 10.0
