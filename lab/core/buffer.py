"""The consumer's buffer: one bounded buffer that every overflow mode uses.

Theory of operation
-------------------
A message the consumer holds is either *waiting* or *in service*. The buffer counts both:
``depth`` is every message the consumer holds, and ``depth <= capacity`` always. So a buffer
of capacity K is exactly the K of the M/M/1/K queue ("the most messages in the system").

Rules of this file:

* It does not decide anything. Whether a new message may come in, and what to throw away
  to make room, is the overflow policy's job (``policies.py``); this file only refuses to
  break its own bound (``push`` on a full buffer raises).
* It does not know about time except for the stamp each message carries.
* ``discipline`` chooses which waiting message is served next: ``fifo`` (arrival order),
  ``priority`` (lowest class number first, arrival order within a class) or ``workload``
  (arrival order, but one queue per class, so a pool of workers can be kept to one class:
  the bulkheads of Module 17).

>>> buf = Buffer(capacity=2)
>>> buf.push(Message(b"p", 1, enqueued_at=0.0)); buf.push(Message(b"p", 2, enqueued_at=0.1))
>>> buf.depth, buf.is_full
(2, True)
>>> buf.start_next().seq        # the worker takes the head; it still counts in depth
1
>>> buf.depth, buf.waiting
(2, 1)
>>> buf.finish().seq
1
"""

from __future__ import annotations

import math
from collections import deque
from itertools import islice
from typing import Deque, List, Optional, Sequence

UNBOUNDED_FREE_SLOTS = 1 << 62
DISCIPLINES = ("fifo", "priority", "workload")


class Message:
    """One data message as the consumer sees it.

    ``due`` and ``sent`` are the producer's wall-clock stamps from the wire; ``enqueued_at``
    and ``started_at`` are the consumer's own clock.
    """

    __slots__ = (
        "producer",
        "seq",
        "due",
        "sent",
        "priority",
        "attempt",
        "payload",
        "enqueued_at",
        "started_at",
        "deadline",
    )

    def __init__(
        self,
        producer: bytes,
        seq: int,
        due: float = 0.0,
        sent: float = 0.0,
        priority: int = 0,
        attempt: int = 0,
        payload: bytes = b"",
        enqueued_at: float = 0.0,
        deadline: float = math.inf,
    ) -> None:
        self.producer = producer
        self.seq = seq
        self.due = due
        self.sent = sent
        self.priority = priority
        self.attempt = attempt
        self.payload = payload
        self.enqueued_at = enqueued_at
        self.started_at: Optional[float] = None
        self.deadline = deadline  # when its caller gives up, on the consumer's clock

    def __repr__(self) -> str:
        return f"Message(producer={self.producer!r}, seq={self.seq}, priority={self.priority})"


class BufferFull(Exception):
    """Raised when code tries to push into a full buffer: a policy bug, never a user error."""


class Buffer:
    """A bounded buffer (``capacity=None`` means unbounded) with FIFO or priority service."""

    __slots__ = (
        "capacity",
        "discipline",
        "depth",
        "_classes",
        "_queues",
        "_waiting",
        "_in_service",
        "_batch",
        "dequeue",
        "dequeue_dropped",
    )

    def __init__(
        self, capacity: Optional[int], discipline: str = "fifo", priority_classes: int = 3
    ) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError("capacity must be at least 1 (or None for unbounded)")
        if discipline not in DISCIPLINES:
            raise ValueError(f"unknown discipline {discipline!r}")
        self.capacity = capacity
        self.discipline = discipline
        self._classes = priority_classes
        classes = 1 if discipline == "fifo" else priority_classes
        self._queues: List[Deque[Message]] = [deque() for _ in range(classes)]
        self._waiting = 0
        self._in_service: Optional[Message] = None
        # Messages in service together: a batch (Module 16) or a pool's workers (Module 17);
        # _in_service is one of them, so "is anything in service" stays one test.
        self._batch: List[Message] = []
        self.depth = 0  # messages held: waiting plus the one in service (kept, not computed)
        # A queue discipline (``disciplines.py``) chooses at dequeue under ``fifo``; what it
        # drops waits in ``dequeue_dropped`` until the consumer counts it.
        self.dequeue = None
        self.dequeue_dropped: List[Message] = []

    # -- size -------------------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def in_service(self) -> Optional[Message]:
        return self._in_service

    @property
    def is_full(self) -> bool:
        return self.capacity is not None and self.depth >= self.capacity

    def free_slots(self) -> int:
        if self.capacity is None:
            return UNBOUNDED_FREE_SLOTS
        return self.capacity - self.depth

    def fill_ratio(self) -> float:
        """depth / capacity, 0 for an unbounded buffer (it has no ceiling to be near)."""
        return 0.0 if self.capacity is None else self.depth / self.capacity

    def __len__(self) -> int:
        return self.depth

    # -- in and out -------------------------------------------------------------------------
    def push(self, message: Message) -> None:
        if self.is_full:
            raise BufferFull(f"buffer holds {self.depth} of {self.capacity}")
        self._queue_for(message.priority).append(message)
        self._waiting += 1
        self.depth += 1

    def start_next(self, now: float = math.inf) -> Optional[Message]:
        """Move the next waiting message into service and return it (None if nothing waits).
        ``now`` is when the worker takes it (a queue discipline may drop at dequeue)."""
        if self._in_service is not None:
            raise RuntimeError("a message is already in service")
        if self.dequeue is not None and self.discipline == "fifo":
            return self._start_by_discipline(now)
        if self.discipline == "workload":
            queue = self._next_queue(self._queues)
            if queue is None:
                return None
            self._waiting -= 1
            self._in_service = queue.popleft()
            return self._in_service
        for queue in self._queues:  # fifo has one queue; priority serves the first class
            if queue:
                self._waiting -= 1
                self._in_service = queue.popleft()
                return self._in_service
        return None

    def _start_by_discipline(self, now: float) -> Optional[Message]:
        message, dropped = self.dequeue.pick(self._queues[0], now)
        if dropped:
            self.dequeue_dropped.extend(dropped)
            self._waiting -= len(dropped)
            self.depth -= len(dropped)
        if message is not None:
            self._waiting -= 1
        self._in_service = message
        return message

    def take_dequeue_dropped(self) -> List[Message]:
        """The messages the discipline dropped since the last call."""
        out, self.dequeue_dropped = self.dequeue_dropped, []
        return out

    def next_arrival(self, classes: Sequence[int]) -> Optional[float]:
        """When the message a worker of ``classes`` would take next arrived (None: none)."""
        queue = self._next_queue(self._class_queues(classes))
        return None if queue is None else queue[0].enqueued_at

    def take(self, classes: Sequence[int]) -> Message:
        """Move the next waiting message of ``classes`` into service beside the others (a
        pool of workers, Module 17); it stays in ``depth`` until :meth:`release`."""
        queue = self._next_queue(self._class_queues(classes))
        if queue is None:
            raise RuntimeError("no message of these classes is waiting")
        message = queue.popleft()
        self._waiting -= 1
        self._batch.append(message)
        self._in_service = self._batch[0]
        return message

    def release(self, message: Message) -> None:
        """Remove a message a pool's worker has finished."""
        self._batch.remove(message)
        self._in_service = self._batch[0] if self._batch else None
        self.depth -= 1

    def oldest_age_of(self, classes: Sequence[int], now: float) -> float:
        """:meth:`oldest_age` among the queues of ``classes`` (a workload's lag)."""
        heads = [queue[0].enqueued_at for queue in self._class_queues(classes) if queue]
        return max(0.0, now - min(heads)) if heads else 0.0

    def finish(self) -> Message:
        """Remove the message in service (it has been processed)."""
        message = self._in_service
        if message is None:
            raise RuntimeError("no message is in service")
        self._in_service = None
        self.depth -= 1
        return message

    def start_batch(self, limit: int, arrived_by: float) -> List[Message]:
        """Move up to ``limit`` waiting messages that had arrived by ``arrived_by`` into
        service together, in service order (a batch; see ``batching.py``)."""
        if self._in_service is not None:
            raise RuntimeError("a message is already in service")
        batch: List[Message] = []
        for queue in self._queues:
            while queue and len(batch) < limit and queue[0].enqueued_at <= arrived_by:
                batch.append(queue.popleft())
        self._waiting -= len(batch)
        self._batch = batch
        self._in_service = batch[0] if batch else None
        return batch

    def finish_batch(self) -> List[Message]:
        """Remove the batch in service (it has been processed)."""
        batch, self._batch, self._in_service = self._batch, [], None
        self.depth -= len(batch)
        return batch

    def nth_arrival(self, n: int) -> Optional[float]:
        """When the ``n``-th waiting message arrived (the moment ``n`` had arrived), or
        None if fewer than ``n`` wait."""
        if self._waiting < n:
            return None
        stamps = sorted(m.enqueued_at for queue in self._queues for m in islice(queue, n))
        return stamps[n - 1]

    def oldest_arrival(self) -> Optional[float]:
        oldest = self.oldest_waiting()
        return None if oldest is None else oldest.enqueued_at

    def evict_oldest(self, min_class: int = 0) -> Optional[Message]:
        """Remove and return the oldest waiting message, never the one in service.

        Under the priority discipline the victim comes from the least important class that
        has anything waiting, among classes ``>= min_class``.
        """
        for index in range(len(self._queues) - 1, -1, -1):
            if index < min_class and self.discipline == "priority":
                break
            queue = self._queues[index]
            if queue:
                self._waiting -= 1
                self.depth -= 1
                return queue.popleft()
        return None

    def oldest_waiting(self) -> Optional[Message]:
        heads = [queue[0] for queue in self._queues if queue]
        if not heads:
            return None
        return min(heads, key=lambda message: message.enqueued_at)

    def oldest_age(self, now: float) -> float:
        """How long the longest-waiting message has waited so far (0 if none waits)."""
        oldest = self.oldest_waiting()
        return 0.0 if oldest is None else max(0.0, now - oldest.enqueued_at)

    def set_discipline(self, discipline: str) -> None:
        """Change how waiting messages are served (a live mode switch); order is kept."""
        if discipline == self.discipline:
            return
        if discipline not in DISCIPLINES:
            raise ValueError(f"unknown discipline {discipline!r}")
        waiting = sorted((m for queue in self._queues for m in queue), key=lambda m: m.enqueued_at)
        self.discipline = discipline
        self._queues = [deque() for _ in range(self._classes if discipline != "fifo" else 1)]
        for message in waiting:
            self._queue_for(message.priority).append(message)

    def waiting_by_class(self) -> List[int]:
        """Waiting messages per class queue (a single number under FIFO)."""
        return [len(queue) for queue in self._queues]

    def drain(self) -> List[Message]:
        """Remove everything (waiting first, then in service): used when a consumer stops."""
        out: List[Message] = []
        for queue in self._queues:
            out.extend(queue)
            queue.clear()
        self._waiting = 0
        if self._batch:
            out.extend(self._batch)
        elif self._in_service is not None:
            out.append(self._in_service)
        self._in_service, self._batch = None, []
        self.depth = 0
        return out

    def _class_queues(self, classes: Sequence[int]) -> List[Deque[Message]]:
        if self.discipline == "fifo":
            return self._queues
        last = len(self._queues) - 1
        return [self._queues[index] for index in sorted({min(max(c, 0), last) for c in classes})]

    def _next_queue(self, queues) -> Optional[Deque[Message]]:
        """The queue whose head is served next: the first non-empty one under ``priority``,
        the one with the oldest head otherwise."""
        if self.discipline == "priority":
            return next((queue for queue in queues if queue), None)
        heads = [queue for queue in queues if queue]
        if len(heads) <= 1:
            return heads[0] if heads else None
        return min(heads, key=lambda queue: queue[0].enqueued_at)

    def _queue_for(self, priority: int) -> Deque[Message]:
        if self.discipline == "fifo":
            return self._queues[0]
        return self._queues[min(max(priority, 0), len(self._queues) - 1)]
