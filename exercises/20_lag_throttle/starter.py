"""Challenge 20: the producer's rule from lag to rate. Your file: edit it, then run

    bplab check 20_lag_throttle

Five times a second the producer reads the consumer group's lag from the broker and asks
your rule for its rate:

* ``update(lag_s, lag_messages, now)``: ``lag_s`` is the age in seconds of the oldest entry
  not processed yet (None if the broker's figures are unknown), ``lag_messages`` the entries
  added past the group's offset plus pending (None if unknown), ``now`` the producer's
  clock in seconds. Return the messages per second to send from now on.

The producer never sends faster than its ``--mps`` (given to you as ``rate``), and the
stream has ``MAXLEN ~ 3000``: a backlog above that is trimmed, lost without being read.

As it stands the rule ignores lag and always asks for the most. Run the check and see.
"""


class LagRule:
    """Lag in, rate out."""

    def __init__(self, target_lag_s: float = 2.0, rate: float = 4000.0) -> None:
        self.target_lag_s = target_lag_s  # the bound the grader holds you to
        self.max_rate = rate  # the producer's ceiling
        self.rate = rate  # TODO 1: start low and find the consumer's speed instead

    def update(self, lag_s, lag_messages, now: float) -> float:
        """TODO 2: slow down (multiplicatively) when the backlog grows above a target,
        speed up (additively) while the lag is low; return the new rate."""
        return self.rate
