"""The consumer's worker: a single server whose service times follow a model.

Theory of operation
-------------------
The lab does not burn CPU to "process" a message; it simulates the worker exactly, in the
consumer's own clock. Each message's service takes a time drawn from :class:`ServiceModel`
(fixed ``1/rate``, or exponential with mean ``1/rate``). The worker starts the next message
the moment the previous one finishes (or the moment it arrives, if the worker was idle).

The shell only has to call :meth:`Worker.advance` with the current time; every message whose
service finished by then is completed, with the exact start and finish times it would have
had. So the processing rate is exact from 1 to far beyond 10,000 msg/s and does not depend
on how often the loop happens to wake up; the loop only wakes at :meth:`Worker.next_event`
so that depth and credits are visible on time.

Rule: ``advance(now)`` must be called before a message is pushed at ``now``. The consumer
core does this, which makes the lazy simulation identical to an eager one (under the
priority discipline too: a message that had not arrived yet can never be picked early).

>>> from lab.core.buffer import Buffer, Message
>>> buf, worker = Buffer(10), Worker(ServiceModel(rate=2.0))     # 0.5 s per message
>>> for seq in range(3): buf.push(Message(b"p", seq, enqueued_at=0.0))
>>> [(m.seq, finish) for m, finish in worker.advance(buf, 1.2)]
[(0, 0.5), (1, 1.0)]
>>> buf.depth, worker.next_event()
(1, 1.5)
"""

from __future__ import annotations

import math
import random
from typing import List, Optional, Tuple

from lab.core.buffer import Buffer, Message

DISTRIBUTIONS = ("fixed", "exponential")


class ServiceModel:
    """How long one message takes: ``fixed`` (1/rate) or ``exponential`` (mean 1/rate).

    ``rate=math.inf`` means zero service time (a consumer that is never the bottleneck).
    ``slowdown`` multiplies every service time (a factor of 4 makes the worker 4x slower).
    """

    __slots__ = ("rate", "distribution", "slowdown", "_rng")

    def __init__(
        self,
        rate: float,
        distribution: str = "fixed",
        rng: Optional[random.Random] = None,
    ) -> None:
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown service distribution {distribution!r}")
        if not rate > 0:
            raise ValueError("processing rate must be positive")
        self.rate = rate
        self.distribution = distribution
        self.slowdown = 1.0
        self._rng = rng or random.Random(0)

    @property
    def effective_rate(self) -> float:
        """Messages per second the worker can do now, slowdown included."""
        return self.rate / self.slowdown

    def next_duration(self) -> float:
        if math.isinf(self.rate):
            return 0.0
        if self.distribution == "fixed":
            return self.slowdown / self.rate
        return self._rng.expovariate(self.rate) * self.slowdown


class Worker:
    """Serves the buffer one message at a time, in the simulation's exact times."""

    __slots__ = ("model", "free_at", "finish_at", "stalled_until")

    def __init__(self, model: ServiceModel, start: float = 0.0) -> None:
        self.model = model
        self.free_at = start  # when the previous service finished
        self.finish_at: Optional[float] = None  # when the message in service will finish
        self.stalled_until = -math.inf

    def advance(self, buffer: Buffer, now: float) -> List[Tuple[Message, float]]:
        """Complete every service that finishes by ``now``; returns (message, finish time)."""
        done: List[Tuple[Message, float]] = []
        while True:
            if buffer.in_service is None:
                if not buffer.waiting:
                    return done
                head_ready = max(self.free_at, self.stalled_until)
                if head_ready > now:
                    return done
                if buffer.dequeue is None:
                    message = buffer.start_next()
                else:  # a discipline decides at the moment the worker takes the next one
                    oldest = buffer.oldest_arrival()
                    message = buffer.start_next(
                        head_ready if oldest is None else max(head_ready, oldest)
                    )
                    if message is None:  # it dropped everything that waited
                        return done
                message.started_at = max(head_ready, message.enqueued_at)
                self.finish_at = message.started_at + self.model.next_duration()
            if self.finish_at is None or self.finish_at > now:
                return done
            message = buffer.finish()
            self.free_at = self.finish_at
            self.finish_at = None
            done.append((message, self.free_at))

    def next_event(self) -> Optional[float]:
        """When the worker next needs attention: the current service's finish, if any."""
        if self.finish_at is not None:
            return self.finish_at
        if self.stalled_until > self.free_at:
            return self.stalled_until
        return None

    def status(self, now: float) -> None:
        """What a batching worker reports (``batching.BatchWorker.status``); one message at a
        time has nothing to add."""
        return None

    def summary(self) -> None:
        return None

    def groups_status(self, now: float) -> list:
        """A pool's groups (``pool.WorkerPool``); one worker has none."""
        return []

    def charge(self, now: float, seconds: float) -> None:
        """Spend ``seconds`` of the worker's time on something that is not a message in the
        buffer (turning a request away costs work too): what runs now finishes later."""
        if seconds <= 0:
            return
        if self.finish_at is not None:
            self.finish_at += seconds
        else:
            self.free_at = max(self.free_at, now) + seconds

    def stall(self, now: float, seconds: float) -> None:
        """Freeze the worker: nothing new starts before ``now + seconds``, and the message in
        service (if any) finishes ``seconds`` later than planned."""
        self.stalled_until = max(self.stalled_until, now + seconds)
        if self.finish_at is not None and self.finish_at > now:
            self.finish_at += seconds
