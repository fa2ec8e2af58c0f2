"""12, breaks the grader: an endless loop while the file loads."""

from lab.core.policies import OverflowPolicy

while True:
    pass


class Never(OverflowPolicy):
    pass
