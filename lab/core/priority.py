"""Overload policies that know some messages matter more (Module 13, the flash sale).

Messages carry a priority class: 0 is critical (checkout), 1 normal (browse), 2 optional
(recommendations, analytics); higher numbers count as 2. Three ways to use that:

* :class:`PriorityDropPolicy` serves critical work first (a priority queue) but still drops
  whatever arrives when the buffer is full, critical or not;
* :class:`PriorityShedPolicy` sheds the least important classes first: optional traffic is
  refused once the buffer passes one watermark, normal traffic past a higher one, and a
  critical message that finds the buffer full pushes out a waiting optional or normal one;
* :class:`DegradePolicy` switches optional features off while the system is overloaded and
  back on only after it has stayed calm for a while (hysteresis, so it does not flap).

They plug into the consumer like every other policy (``policies.py``); the shed ones answer
with a retry-after, so a polite producer backs off.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

from lab.core.buffer import Buffer, Message
from lab.core.policies import (
    ACCEPT,
    ACCEPT_EVICTING_OLDEST,
    DEFAULT_RETRY_AFTER_MS,
    DROP,
    Decision,
    LoadSignals,
    OverflowPolicy,
)

CRITICAL, NORMAL, OPTIONAL = 0, 1, 2
CLASS_NAMES = {CRITICAL: "critical", NORMAL: "normal", OPTIONAL: "optional"}


def class_of(message: Message) -> int:
    return min(max(message.priority, 0), OPTIONAL)


class PriorityDropPolicy(OverflowPolicy):
    """A priority queue with tail drop: critical first, but a full buffer drops anyone."""

    name = "priority"
    discipline = "priority"


class PriorityShedPolicy(OverflowPolicy):
    """Shed by class: each class has a watermark (a fraction of the buffer) above which it is
    refused with a retry-after; critical traffic pushes lesser work out when full.

    >>> from lab.core.buffer import Buffer, Message
    >>> policy, buf = PriorityShedPolicy(watermarks=(1.0, 0.8, 0.5)), Buffer(10, "priority")
    >>> for seq in range(5): buf.push(Message(b"p", seq, priority=2))
    >>> policy.decide(Message(b"p", 9, priority=2), buf, 0.0)   # optional, at 50%: shed
    Decision(kind='shed', retry_after_ms=200)
    >>> policy.decide(Message(b"p", 9, priority=1), buf, 0.0).kind   # normal still fits
    'accept'
    """

    name = "priority-shed"
    discipline = "priority"
    pure_below_limit = True  # below every watermark it accepts, keeping no state

    def __init__(
        self,
        watermarks: Sequence[float] = (1.0, 0.8, 0.5),
        retry_after_ms: int = DEFAULT_RETRY_AFTER_MS,
    ):
        if len(watermarks) != 3 or not all(0.0 < w <= 1.0 for w in watermarks):
            raise ValueError("three watermarks (critical, normal, optional), each in (0, 1]")
        self.watermarks = tuple(watermarks)
        self.retry_after_ms = retry_after_ms
        self._shed = Decision.shed(retry_after_ms)

    def decide(self, message: Message, buffer: Buffer, now: float) -> Decision:
        cls = class_of(message)
        limit = self.admission_limit(buffer)
        if buffer.depth < self.watermarks[cls] * limit and buffer.depth < limit:
            return ACCEPT
        if cls == CRITICAL and buffer.depth >= limit and _lesser_waiting(buffer, cls):
            return ACCEPT_EVICTING_OLDEST  # the buffer evicts from the least important class
        return self._shed


class DegradePolicy(OverflowPolicy):
    """Graceful degradation: optional classes are switched off while overloaded.

    Overloaded means the buffer reached ``high`` of its capacity. Optional features come
    back once the buffer has stayed at or below ``low`` for ``hold_s`` seconds. While they
    are off, optional messages are shed (refused with a retry-after) even if there is room;
    everything else is FIFO with tail drop.
    """

    name = "degrade"

    def __init__(
        self,
        high: float = 0.8,
        low: float = 0.3,
        hold_s: float = 1.0,
        optional_from: int = OPTIONAL,
        retry_after_ms: int = 1000,
    ) -> None:
        if not 0.0 <= low < high <= 1.0:
            raise ValueError("need 0 <= low < high <= 1")
        self.high, self.low, self.hold_s = high, low, hold_s
        self.optional_from = optional_from
        self.retry_after_ms = retry_after_ms
        self._shed = Decision.shed(retry_after_ms)
        self.degraded = False
        self.switches = 0
        self._calm_since: Optional[float] = None

    def decide(self, message: Message, buffer: Buffer, now: float) -> Decision:
        self._update(buffer.depth, self.admission_limit(buffer), now)
        if self.degraded and class_of(message) >= self.optional_from:
            return self._shed
        return ACCEPT if buffer.depth < self.admission_limit(buffer) else DROP

    def observe(self, signals: LoadSignals, now: float) -> None:
        if signals.capacity:
            self._update(signals.depth, signals.capacity, now)

    def status(self) -> Dict[str, Any]:
        return {"degraded": self.degraded, "switches": self.switches}

    def _update(self, depth: int, limit: int, now: float) -> None:
        if not self.degraded:
            if depth >= self.high * limit:
                self.degraded, self.switches, self._calm_since = True, self.switches + 1, None
            return
        if depth > self.low * limit:
            self._calm_since = None
        elif self._calm_since is None:
            self._calm_since = now
        elif now - self._calm_since >= self.hold_s:
            self.degraded, self.switches = False, self.switches + 1


def _lesser_waiting(buffer: Buffer, cls: int) -> bool:
    counts = buffer.waiting_by_class()
    if buffer.discipline == "fifo":
        return False
    return any(counts[c] for c in range(cls + 1, len(counts)))
