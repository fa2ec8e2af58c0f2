"""12, breaks the grader: SystemExit while the file loads."""

import sys

from lab.core.policies import OverflowPolicy

sys.exit(0)


class Never(OverflowPolicy):
    pass
