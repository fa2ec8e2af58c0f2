"""Challenge 12: adaptive backpressure. Your file: edit it, then run

    bplab check 12_adaptive_backpressure

The consumer builds one ``AdaptiveBackpressure`` and asks it two questions:

* ``observe(signals, now)``, about ten times a second, with what it measured lately (a
  :class:`lab.core.policies.LoadSignals`): ``service_rate_per_s`` (messages per second the
  worker can do right now), ``processed_per_s`` (what it did in the last second),
  ``queue_wait_p99_s``, ``depth``, ``capacity``, ``rss_mb`` (the process's memory), ...
* ``admission_limit(buffer)``, for every arriving message: how many messages the buffer
  may hold. A message that finds ``depth >= limit`` is dropped (``OverflowPolicy.decide``
  does that for you).

As it stands, the limit is fixed: 20 messages, 0.2 s of work for the full-speed worker.
Run the check and read why that is not enough.
"""

from lab.core.policies import LoadSignals, OverflowPolicy


class AdaptiveBackpressure(OverflowPolicy):
    """Keep the queue as long as the latency target allows, and no longer."""

    name = "adaptive"

    FIXED_LIMIT = 20  # TODO: replace the fixed limit with one computed in observe()

    def __init__(
        self,
        capacity: int = 50,
        process_rate: float = 10.0,
        wait_target_s: float = 0.25,
        max_memory_mb: float = 512.0,
    ) -> None:
        """The consumer passes its own settings (any of these names you ask for):

        * ``capacity``: the buffer's hard bound (your limit must stay within it);
        * ``process_rate``: the worker's nominal speed, msg/s (before any slowdown);
        * ``wait_target_s``: the latency target (the consumer's --wait-target-ms);
        * ``max_memory_mb``: the memory guard; treat RSS above 3/4 of it as pressure.
        """
        self.capacity = capacity
        self.wait_target_s = wait_target_s or 0.25
        self.memory_budget_mb = 0.75 * max_memory_mb
        self.limit = min(capacity, self.FIXED_LIMIT)

    def observe(self, signals: LoadSignals, now: float) -> None:
        """Called about ten times a second with fresh measurements.

        TODO 1: size the limit from the worker's speed and the target. Little's law: a
                queue of L messages in front of a worker doing R msg/s makes the last one
                wait about L / R seconds.
        TODO 2: when the worker slows down, shrink at once (this very call).
        TODO 3: when ``signals.rss_mb`` is above ``self.memory_budget_mb``, at least
                halve the limit.
        TODO 4: keep the limit between 2 (the worker never waits for work) and
                ``self.capacity``.
        """

    def admission_limit(self, buffer) -> int:
        """How many messages the buffer may hold (never more than it can)."""
        return min(self.limit, buffer.free_slots() + buffer.depth)

    def status(self):
        """Shown on the dashboard under the policy's name."""
        return {"limit": self.limit}
