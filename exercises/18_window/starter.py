"""Challenge 18: the window over a slow link. Your file: edit it, then run

    bplab check 18_window

The consumer runs in block mode: it grants the producer credit up to
``admission_limit(buffer)`` messages held plus in flight, so that number is the window.
It asks your ``Window`` two questions:

* ``observe(signals, now)``, about ten times a second, with what it measured lately (a
  :class:`lab.core.policies.LoadSignals`): ``round_trip_s`` (the credit's round trip:
  from a grant going out to the data it allowed coming back; None until measured),
  ``in_flight`` (messages held plus credit not yet used), ``service_rate_per_s``,
  ``processed_per_s``, ``depth``, ...
* ``admission_limit(buffer)``: the window, never more than the buffer holds.

As it stands, the window is fixed at 10 messages. Run the check and read why that is not
enough.
"""

from lab.core.policies import BlockPolicy, LoadSignals


class Window(BlockPolicy):
    """Block mode's credit window, sized to the link."""

    name = "window"

    FIXED_WINDOW = 10  # TODO: replace the fixed window with one computed in observe()

    def __init__(self, capacity: int = 1000, process_rate: float = 1000.0) -> None:
        """The consumer passes its own settings (any of these names you ask for):

        * ``capacity``: the buffer's hard bound (your window must stay within it);
        * ``process_rate``: the worker's speed, msg/s.
        """
        self.capacity = capacity
        self.process_rate = process_rate
        self.window = min(capacity, self.FIXED_WINDOW)

    def observe(self, signals: LoadSignals, now: float) -> None:
        """Called about ten times a second with fresh measurements.

        TODO 1: how many messages does the worker finish in one round trip? That many must
                be in flight to keep it busy (Module 18: the bandwidth-delay product).
        TODO 2: the link's delay changes during the run: follow the round trip both ways.
        TODO 3: keep the window between 1 and ``self.capacity``.
        """

    def admission_limit(self, buffer) -> int:
        """The window: how many messages may be held plus in flight."""
        return min(self.window, buffer.free_slots() + buffer.depth)

    def status(self):
        """Shown on the dashboard under the policy's name."""
        return {"window": self.window}
