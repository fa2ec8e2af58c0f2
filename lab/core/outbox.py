"""The outbox: the producer's messages that were made and have not gone yet.

Theory of operation
-------------------
An :class:`Entry` is one message the producer answers for until it has a final verdict:
its sequence number, its due time (latency is measured from it), its priority class, its
attempt number and the sequence number of the request's first attempt (``origin``).

The :class:`Outbox` holds the entries that may not go yet, oldest first: before the
consumer's WELCOME, in block mode until credit comes, while the socket is full or a
partial frame waits out the frame interval.

Rules:

* **Bounded.** ``limit(credit_limit, window)`` is how many entries it may hold:
  ``--max-pending`` if given; in block mode the consumer's window (so the waiting moves from
  the consumer's buffer into the outbox, and shows as producer latency); else
  ``max(DEFAULT_OUTBOX_WITHOUT_CREDIT, batch_max)``. A full outbox *blocks* the producer:
  it makes nothing and the slots it misses are skipped, as for a thread stuck in ``put``.
* **Back and front.** New messages join at the back. What must go before them (released
  retries, what a restarted consumer may have lost, a frame the socket refused) goes back
  to the front, keeping its own order.
* **Resends** are entries with ``resend`` set: a restarted consumer may have lost them.
  A stopped producer sends only those (``take_resends``); what never left stays pending.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, Iterable, Iterator, List, Optional

DEFAULT_OUTBOX_WITHOUT_CREDIT = 10_000


class Entry:
    """A message the producer is responsible for until it has a final verdict."""

    __slots__ = ("seq", "due", "priority", "attempt", "resend", "origin", "sent_at")

    def __init__(
        self, seq: int, due: float, priority: int = 0, attempt: int = 0, origin: int = -1
    ) -> None:
        self.seq = seq
        self.due = due
        self.priority = priority
        self.attempt = attempt
        self.resend = False
        self.origin = seq if origin < 0 else origin  # the first attempt's seq
        self.sent_at = 0.0


class Outbox:
    """The bounded queue of entries waiting to go. See the module docstring."""

    __slots__ = ("_entries", "max_pending", "batch_max")

    def __init__(self, max_pending: Optional[int], batch_max: int) -> None:
        self._entries: Deque[Entry] = deque()
        self.max_pending = max_pending
        self.batch_max = batch_max

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    def limit(self, credit_limit: Optional[int], window: Optional[int]) -> int:
        """How many entries it may hold, given the consumer's credit and window."""
        if self.max_pending is not None:
            return self.max_pending
        if credit_limit is not None and window:
            return window
        return max(DEFAULT_OUTBOX_WITHOUT_CREDIT, self.batch_max)

    def add(self, entries: Iterable[Entry]) -> None:
        """New messages, at the back."""
        self._entries.extend(entries)

    def put_back(self, entries: List[Entry]) -> None:
        """Entries that go before everything waiting, in their own order, at the front."""
        self._entries.extendleft(reversed(entries))

    def take(self, n: int) -> List[Entry]:
        """The oldest ``n`` entries (there must be that many)."""
        waiting = self._entries
        if n >= len(waiting):  # all of them: the unpaced producer's every frame
            taken = list(waiting)
            waiting.clear()
            return taken
        return [waiting.popleft() for _ in range(n)]

    def take_resends(self, n: int) -> List[Entry]:
        """The first ``n`` resends, wherever they are; the rest stays in its order."""
        taken: List[Entry] = []
        kept: List[Entry] = []
        for entry in self._entries:
            (taken if entry.resend and len(taken) < n else kept).append(entry)
        self._entries = deque(kept)
        return taken

    def resends(self) -> int:
        return sum(1 for entry in self._entries if entry.resend)

    def has_resends(self) -> bool:
        return any(entry.resend for entry in self._entries)
