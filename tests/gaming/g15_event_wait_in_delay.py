"""15, hangs inside a C call: delay() waits on an event that nobody sets."""

import threading


class Waits:
    def delay(self, attempt, retry_after_s, now):
        threading.Event().wait()
        return retry_after_s
