"""Pull mode's demand: how many records a producer may still send, and when a consumer asks.

Theory of operation
-------------------
Two small ledgers, one for each end, both counting from the start of the conversation.

:class:`Demand` is the producer's side (Reactive Streams' subscription rules):

* every ``request(n)`` adds ``n`` to ``requested``; demand adds up, it is never replaced;
* ``outstanding`` is ``requested - sent``; :meth:`Demand.take` grants at most that many, so
  ``sent`` can never pass the sum of everything requested;
* ``n`` must be positive (rule 3.9); a total past ``UNBOUNDED`` is held at ``UNBOUNDED``,
  which means "no limit" (rule 3.17).

:class:`Requester` is the consumer's side. It keeps at most ``window`` records promised:
asked for and not yet finished (on the link, in the buffer or being served). When a record
finishes, its room comes back at once; as soon as the free room reaches ``request_n`` it
asks for as many whole ``request_n`` chunks as fit. With ``request_n = 1`` this is block
mode's credit (each completion grants one); a larger ``request_n`` sends fewer, larger
requests and leaves up to ``request_n - 1`` of the window unused between them.
"""

from __future__ import annotations

UNBOUNDED = (1 << 63) - 1


class Demand:
    """The producer's count of demand: what it was asked for and what it sent."""

    __slots__ = ("requested", "sent")

    def __init__(self) -> None:
        self.requested = 0
        self.sent = 0

    @property
    def outstanding(self) -> int:
        return self.requested - self.sent

    def request(self, n: int) -> None:
        """Add ``n`` (>= 1) to the demand."""
        if n < 1:
            raise ValueError("request(n) needs n >= 1")
        self.requested = min(UNBOUNDED, self.requested + n)

    def take(self, wanted: int) -> int:
        """Grant up to ``wanted`` records against the outstanding demand; returns how many."""
        granted = max(0, min(wanted, self.outstanding))
        self.sent += granted
        return granted


class Requester:
    """The consumer's side: ask for room as it frees, never more than ``window`` promised."""

    __slots__ = ("window", "request_n", "requested", "finished")

    def __init__(self, window: int, request_n: int = 1) -> None:
        if window < 1:
            raise ValueError("--window must be at least 1")
        if not 1 <= request_n <= window:
            raise ValueError("--request-n must be between 1 and --window")
        self.window = window
        self.request_n = request_n
        self.requested = 0
        self.finished = 0

    @property
    def promised(self) -> int:
        """Asked for and not yet finished: on the link, waiting or in service."""
        return self.requested - self.finished

    def finish(self, count: int = 1) -> None:
        """``count`` records were served: their room is free again."""
        self.finished = min(self.requested, self.finished + count)

    def resize(self, window: int) -> None:
        """A new window; room already promised past it is used up, never taken back."""
        if window < 1:
            raise ValueError("--window must be at least 1")
        self.window = window
        self.request_n = min(self.request_n, window)

    def due(self) -> int:
        """How much to request now (0: nothing). Whole chunks of ``request_n`` that fit."""
        free = self.window - self.promised
        n = (free // self.request_n) * self.request_n if free > 0 else 0
        self.requested += n
        return n
