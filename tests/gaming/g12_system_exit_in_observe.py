"""12, breaks the grader: SystemExit inside observe()."""

import sys

from lab.core.policies import OverflowPolicy


class Quits(OverflowPolicy):
    def observe(self, signals, now):
        sys.exit(0)
