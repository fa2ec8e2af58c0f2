"""15, degenerate: never retries."""


class Never:
    def delay(self, attempt, retry_after_s, now):
        return None
