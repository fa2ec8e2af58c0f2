"""Making messages: when they come due, their sequence numbers and priority classes.

Theory of operation
-------------------
The :class:`MessageMaker` is the producer's pace. It turns the
:class:`~lab.core.pacing.PacingSchedule` (or, unpaced, "as fast as they can leave") into
new :class:`~lab.core.outbox.Entry` objects for the outbox.

Rules:

* **Room.** It makes at most what the outbox has room for. A paced producer whose outbox
  is full skips the slots it misses (``skipped``): it does not make them later in a burst.
  An unpaced one makes a batch (``batch_max``) only once the outbox holds less than that.
* **Sequence numbers** count every message made, retries of a timed-out request included
  (``renumbered``): a seq is never sent for two different attempts.
* **Classes** are drawn from ``priority_mix`` with the producer's seeded generator (shared
  with the retry jitter: the order of draws is part of a seeded run).
* **Live changes** (``set_rate``, ``start_spike``) move the schedule; an unpaced producer
  has no rate to change.
"""

from __future__ import annotations

import math
import random
from typing import List, Optional, Tuple

from lab.core.config import ProducerConfig
from lab.core.outbox import Entry
from lab.core.pacing import PacingSchedule


class MessageMaker:
    """The pace, the sequence numbers and the classes. See the module docstring."""

    __slots__ = ("schedule", "unpaced", "batch_max", "next_seq", "skipped", "_rng", "_weights")

    def __init__(self, config: ProducerConfig, rng: random.Random, now: float) -> None:
        self.unpaced = math.isinf(config.messages_per_s)
        self.schedule: Optional[PacingSchedule] = None
        if not self.unpaced:
            self.schedule = PacingSchedule(
                config.messages_per_s,
                now,
                config.profile,
                spike_at=config.spike_at,
                spike_duration=config.spike_duration,
                spike_factor=config.spike_factor,
                rng=random.Random(config.seed + 1),
            )
        self.batch_max = config.batch_max
        self.next_seq = 0
        self.skipped = 0
        self._rng = rng
        self._weights = list(config.priority_mix)

    def make(self, now: float, waiting: int, room: int) -> Tuple[int, List[float], List[Entry]]:
        """What came due by ``now`` with ``waiting`` messages in the outbox and ``room``
        more allowed: (first seq, due times, entries)."""
        first = self.next_seq
        if self.unpaced:
            # As fast as possible, but only as much as can leave soon: a full outbox would
            # only add waiting time to every message.
            if waiting >= self.batch_max:
                return first, [], []
            dues = [now] * max(0, min(room, self.batch_max))
        else:
            assert self.schedule is not None
            dues = self.schedule.due_until(now, limit=max(room, 0))
            if len(dues) == max(room, 0) and self.schedule.next_due <= now:
                self.skipped += self.schedule.skip_to(now)
        if not dues:
            return first, [], []
        if len(self._weights) > 1:
            classes = self._rng.choices(range(len(self._weights)), self._weights, k=len(dues))
        else:
            classes = [0] * len(dues)
        self.next_seq = first + len(dues)
        seqs = range(first, self.next_seq)
        entries = [Entry(seq, due, cls) for seq, due, cls in zip(seqs, dues, classes)]
        return first, dues, entries

    def renumbered(self, entry: Entry) -> Entry:
        """The same request and attempt under a new seq (its old seq timed out)."""
        again = Entry(self.next_seq, entry.due, entry.priority, entry.attempt, entry.origin)
        self.next_seq += 1
        return again

    def next_due(self, now: float) -> Optional[float]:
        """When the next message comes due: ``now`` unpaced, None if never."""
        if self.unpaced:
            return now
        return self.schedule.next_due if self.schedule is not None else None

    def rate_at(self, now: float) -> float:
        if self.schedule is None:
            return math.inf
        return self.schedule.rate_at(now)

    def set_rate(self, rate: float, now: float) -> None:
        if self.schedule is None:
            raise ValueError("an unpaced producer has no rate to change")
        self.schedule.set_rate(rate, now)

    def start_spike(self, now: float, factor: float, duration: float) -> None:
        if self.schedule is None:
            raise ValueError("an unpaced producer cannot spike")
        self.schedule.start_spike(now, factor, duration)
