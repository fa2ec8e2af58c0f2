"""Challenge 17: the consumer's scaling rule. Your file: edit it, then run

    bplab check 17_autoscaler

The consumer runs a pool of workers (Module 17) in front of a shared database. Four times a
second it asks ``decide(workers, lag_s, now)`` how many workers it should have: ``workers``
is how many it has, ``lag_s`` the age in seconds of the oldest message still waiting (0
when nothing waits), ``now`` the consumer's clock. It keeps your answer within
``minimum`` and ``maximum`` (1 and 12).

As it stands the rule never changes the pool. Run the check and see.
"""


class Scaler:
    """Lag in, workers out."""

    def __init__(
        self,
        lag_target_s: float = 1.5,
        process_rate: float = 100.0,
        db_capacity: float = 250.0,
        minimum: int = 1,
        maximum: int = 12,
    ) -> None:
        self.lag_target_s = lag_target_s  # the bound the grader holds you to
        self.process_rate = process_rate  # one worker's messages a second, without the database
        self.db_capacity = db_capacity  # the database's operations a second, one caller
        self.minimum, self.maximum = minimum, maximum

    def decide(self, workers: int, lag_s: float, now: float) -> int:
        """TODO 1: add workers quickly when lag grows; TODO 2: give them back when it stays
        near zero; TODO 3: never more than the database can use."""
        return workers
