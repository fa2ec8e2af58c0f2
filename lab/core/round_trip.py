"""Block mode's credit round trip, measured by the consumer: grant out, data back.

Theory of operation
-------------------
Over a slow link a window of W credits allows at most W / (2D + s) messages a second
(Module 18), so a policy that sizes the window needs the round trip. The consumer can time
it without any help from the producer, the way TCP times one segment at a time:

* when credit up to ordinal N goes to a producer at ``now`` and no probe of that producer
  is on its way, the grant becomes the producer's probe ``(N, now)``;
* when the producer's records reach ordinal N (the last record that grant allowed has
  arrived), ``now - granted_at`` is one sample: the grant's trip over the link, the
  producer's turn, the data's trip back. A producer with data waiting answers at once, so
  the sample is 2D plus the loop turns of both processes;
* a producer that had nothing to send makes a sample too long, never too short, so
  :meth:`RoundTripMeter.recent` is the smallest sample of the last
  :data:`ROUND_TRIP_WINDOW_S` (TCP's min RTT over a short window: it follows a link that got
  faster at once and one that got slower within the window), or the latest sample when
  none is that recent, or None before the first.

Credit that is taken back or restarted ends the probe (``credit.py``), so a probe never
spans a producer's restart. Pure: every call takes ``now``.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, Iterable, Optional, Tuple

from lab.core.peers import ProducerState

ROUND_TRIP_WINDOW_S = 0.5  # the recent minimum is taken over this many seconds of samples
MAX_SAMPLES = 256  # a bound on memory, far above one sample per producer per round trip


class RoundTripMeter:
    """The credit round trip's samples, and the recent minimum. See the module docstring."""

    __slots__ = ("window_s", "_samples", "last", "count")

    def __init__(self, window_s: float = ROUND_TRIP_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: Deque[Tuple[float, float]] = deque(maxlen=MAX_SAMPLES)  # (at, seconds)
        self.last: Optional[float] = None
        self.count = 0

    def granted(self, states: Iterable[ProducerState], now: float) -> None:
        """Credit went out at ``now`` to ``states``: each without a probe starts one."""
        for state in states:
            if state.credit_probe is None:
                state.credit_probe = (state.credit_limit, now)

    def received(self, state: ProducerState, now: float) -> None:
        """Records of ``state`` arrived at ``now``: a probe they complete is one sample."""
        probe = state.credit_probe
        if probe is None or state.received_ordinal < probe[0]:
            return
        state.credit_probe = None
        sample = now - probe[1]
        self._samples.append((now, sample))
        self.last = sample
        self.count += 1

    def recent(self, now: float) -> Optional[float]:
        """The smallest sample of the last ``window_s``; else the latest; None before any."""
        samples = self._samples
        horizon = now - self.window_s
        while samples and samples[0][0] < horizon:
            samples.popleft()
        if not samples:
            return self.last
        return min(seconds for _, seconds in samples)
