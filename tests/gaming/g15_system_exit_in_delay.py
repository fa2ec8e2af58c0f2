"""15, breaks the grader: SystemExit inside delay()."""

import sys


class Quits:
    def delay(self, attempt, retry_after_s, now):
        sys.exit(3)
