"""15, hangs inside a C call: delay() sleeps a minute (the interpreter's lock is let go)."""

import time


class Sleeps:
    def delay(self, attempt, retry_after_s, now):
        time.sleep(60)
        return retry_after_s
