"""12, degenerate: always accept (the whole buffer, whatever happens)."""

from lab.core.policies import OverflowPolicy


class AlwaysAccept(OverflowPolicy):
    pass
