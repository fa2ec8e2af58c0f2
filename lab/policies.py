"""Overflow policies: what the consumer does with a message when it arrives.

Theory of operation
-------------------
Every mode of the lab is one small object with one question to answer::

    decide(message, buffer, now) -> Decision

and the consumer core (``consumer_core.py``) carries the decision out: it pushes, evicts,
counts and answers the producer. A policy never touches the buffer itself, never sends
anything and never reads a clock, so each one can be tested with a hand-made buffer.

Two optional hooks let smarter policies (the exercises) plug in without touching any loop:

* ``observe(signals, now)`` is called about ten times a second with the consumer's measured
  load (:class:`LoadSignals`): processing rate, queue wait, memory.
* ``admission_limit(buffer)`` is how many messages the policy lets the buffer hold. It is the
  buffer's capacity unless the policy keeps the queue shorter; in block mode the credits the
  producers get are computed from it.

The table :data:`MODES` is the one place that knows which modes exist.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, NamedTuple, Optional

from lab.buffer import Buffer, Message

ACCEPT = "accept"
ACCEPT_EVICTING_OLDEST = "accept-evicting-oldest"
DROP = "drop"
SAMPLE_OUT = "sample-out"
SHED = "shed"


class LoadSignals(NamedTuple):
    """What the consumer measured lately; handed to ``OverflowPolicy.observe``."""

    arrival_per_s: float
    processed_per_s: float
    service_rate_per_s: float
    depth: int
    capacity: Optional[int]
    oldest_age_s: float
    queue_wait_p99_s: float
    rss_mb: float


class OverflowPolicy:
    """Base class: accept while there is room, otherwise ``on_full``."""

    name = "base"
    uses_credit = False
    retry_after_ms = 0
    discipline = "fifo"  # which waiting message the worker serves next (see buffer.py)

    def decide(self, message: Message, buffer: Buffer, now: float) -> str:
        if buffer.depth < self.admission_limit(buffer):
            return ACCEPT
        return self.on_full(message, buffer, now)

    def on_full(self, message: Message, buffer: Buffer, now: float) -> str:
        return DROP

    def admission_limit(self, buffer: Buffer) -> int:
        return buffer.free_slots() + buffer.depth

    def observe(self, signals: LoadSignals, now: float) -> None:
        """Hook for adaptive policies; the fixed ones ignore it."""

    def status(self) -> Dict[str, Any]:
        """What the dashboard should show about this policy's own state (JSON-able)."""
        return {}


class BlockPolicy(OverflowPolicy):
    """Backpressure: producers may only send what the consumer has room for.

    Room is handed out as credit (see ``docs/protocol.md``), so a well-behaved producer never
    finds the buffer full. A message that arrives anyway (a producer ignoring its credit) is
    dropped rather than letting the buffer grow past its bound; the core counts it as
    ``over_credit`` so the misbehaviour is visible.
    """

    name = "block"
    uses_credit = True


class DropNewestPolicy(OverflowPolicy):
    """Tail drop: when the buffer is full, the message that just arrived is discarded."""

    name = "drop"


class DropOldestPolicy(OverflowPolicy):
    """Head drop: when full, evict the oldest waiting message to make room for the new one.

    Fresh data beats stale data (think typing indicators or sensor readings). The evicted
    message had been accepted; the core moves it from *accepted* to *dropped* and tells its
    producer, so the accounting identity still closes.
    """

    name = "drop-oldest"

    def on_full(self, message: Message, buffer: Buffer, now: float) -> str:
        return ACCEPT_EVICTING_OLDEST if buffer.waiting else DROP


class SamplePolicy(OverflowPolicy):
    """Sampling: above a watermark, keep only one message in every ``keep_one_in``.

    Below ``watermark`` (a fraction of capacity) everything is kept. Above it, the first of
    every ``keep_one_in`` arrivals is kept and the rest are *sampled out*. If even a kept
    message finds the buffer full, it is dropped.

    >>> from lab.buffer import Buffer, Message
    >>> policy, buf = SamplePolicy(keep_one_in=3, watermark=0.0), Buffer(10)
    >>> [policy.decide(Message(b"p", i), buf, 0.0) for i in range(4)]
    ['accept', 'sample-out', 'sample-out', 'accept']
    """

    name = "sample"

    def __init__(self, keep_one_in: int = 10, watermark: float = 0.5) -> None:
        if keep_one_in < 1:
            raise ValueError("keep_one_in must be at least 1")
        if not 0.0 <= watermark <= 1.0:
            raise ValueError("watermark is a fraction of capacity, between 0 and 1")
        self.keep_one_in = keep_one_in
        self.watermark = watermark
        self._arrivals_above_watermark = 0

    def decide(self, message: Message, buffer: Buffer, now: float) -> str:
        limit = self.admission_limit(buffer)
        if buffer.capacity is None or buffer.depth < self.watermark * limit:
            self._arrivals_above_watermark = 0
            return ACCEPT
        keep = self._arrivals_above_watermark % self.keep_one_in == 0
        self._arrivals_above_watermark += 1
        if not keep:
            return SAMPLE_OUT
        return ACCEPT if buffer.depth < limit else DROP


class ShedPolicy(OverflowPolicy):
    """Load shedding: when full, reject the message back to its producer with a retry-after.

    Unlike a silent drop, the producer learns at once (think HTTP 429/503) and can back off.
    """

    name = "shed"

    def __init__(self, retry_after_ms: int = 200) -> None:
        if retry_after_ms < 0:
            raise ValueError("retry_after_ms cannot be negative")
        self.retry_after_ms = retry_after_ms

    def on_full(self, message: Message, buffer: Buffer, now: float) -> str:
        return SHED


class UnboundedPolicy(OverflowPolicy):
    """No limit at all: the naive queue. Memory grows until the memory guard stops it."""

    name = "unbounded"

    def decide(self, message: Message, buffer: Buffer, now: float) -> str:
        return ACCEPT


class ModeInfo(NamedTuple):
    name: str
    behaviour: str
    build: Callable[..., OverflowPolicy]
    bounded: bool


def _build_block(**_: object) -> OverflowPolicy:
    return BlockPolicy()


def _build_drop(**_: object) -> OverflowPolicy:
    return DropNewestPolicy()


def _build_drop_oldest(**_: object) -> OverflowPolicy:
    return DropOldestPolicy()


def _build_sample(sample_every: int = 10, sample_watermark: float = 0.5, **_: object):
    return SamplePolicy(keep_one_in=sample_every, watermark=sample_watermark)


def _build_shed(retry_after_ms: int = 200, **_: object) -> OverflowPolicy:
    return ShedPolicy(retry_after_ms=retry_after_ms)


def _build_unbounded(**_: object) -> OverflowPolicy:
    return UnboundedPolicy()


def _build_priority(**_: object) -> OverflowPolicy:
    from lab.priority import PriorityDropPolicy

    return PriorityDropPolicy()


def _build_priority_shed(
    shed_watermarks=(1.0, 0.8, 0.5), retry_after_ms: int = 200, **_: object
) -> OverflowPolicy:
    from lab.priority import PriorityShedPolicy

    return PriorityShedPolicy(shed_watermarks, retry_after_ms)


def _build_degrade(
    degrade_high: float = 0.8, degrade_low: float = 0.3, degrade_hold_s: float = 1.0, **_: object
) -> OverflowPolicy:
    from lab.priority import DegradePolicy

    return DegradePolicy(degrade_high, degrade_low, degrade_hold_s)


def _build_admit(
    admit_rate: float = 10.0, admit_burst: int = 10, retry_after_ms: int = 200, **_: object
) -> OverflowPolicy:
    from lab.ratelimit import AdmissionPolicy

    return AdmissionPolicy(admit_rate, admit_burst, retry_after_ms)


MODES: Dict[str, ModeInfo] = {
    info.name: info
    for info in (
        ModeInfo(
            "block", "producer waits for credit: nothing is lost, latency grows", _build_block, True
        ),
        ModeInfo("drop", "buffer full: the newest message is discarded", _build_drop, True),
        ModeInfo(
            "drop-oldest",
            "buffer full: the oldest waiting message is discarded",
            _build_drop_oldest,
            True,
        ),
        ModeInfo(
            "sample", "above the watermark keep 1 in N, discard the rest", _build_sample, True
        ),
        ModeInfo("shed", "buffer full: reject to the producer with retry-after", _build_shed, True),
        ModeInfo(
            "unbounded",
            "accept everything: memory grows until the guard stops it",
            _build_unbounded,
            False,
        ),
        ModeInfo(
            "priority",
            "priority queue: critical served first; full buffer drops anyone",
            _build_priority,
            True,
        ),
        ModeInfo(
            "priority-shed",
            "shed optional, then normal traffic above watermarks; critical pushes lesser out",
            _build_priority_shed,
            True,
        ),
        ModeInfo(
            "degrade",
            "overloaded: optional features switched off, back on after calm (hysteresis)",
            _build_degrade,
            True,
        ),
        ModeInfo(
            "admit",
            "admission control: a token bucket; no token = shed with exact retry-after (429)",
            _build_admit,
            True,
        ),
    )
}


def build_policy(mode: str, **options: object) -> OverflowPolicy:
    """The policy object for a mode name; options are the consumer's flags (ignored if unused)."""
    try:
        info = MODES[mode]
    except KeyError:
        allowed = ", ".join(MODES)
        raise ValueError(f"unknown mode {mode!r}; choose one of: {allowed}") from None
    return info.build(**options)
