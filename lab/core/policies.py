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

The table ``lab.core.modes.MODES`` is the one place that knows which modes exist.
"""

from __future__ import annotations

from typing import Any, Dict, NamedTuple, Optional, Union

from lab.core.buffer import Buffer, Message

DEFAULT_RETRY_AFTER_MS = 200  # what a shed tells the producer unless configured otherwise

# The decision kinds (also the plain strings older policy files return).
KINDS = ("accept", "accept-evicting-oldest", "drop", "sample-out", "shed")


class Decision(NamedTuple):
    """What a policy decided about one message: a kind, and for a shed the retry-after.

    ``retry_after_ms`` is None when the policy did not say (the bare ``SHED`` constant);
    :func:`normalise` settles it once, so the core never reads a policy's state for it.

    >>> Decision.shed(350)
    Decision(kind='shed', retry_after_ms=350)
    >>> ACCEPT.kind, ACCEPT.retry_after_ms
    ('accept', 0)
    """

    kind: str
    retry_after_ms: Optional[int] = 0

    @classmethod
    def shed(cls, retry_after_ms: int) -> Decision:
        """A shed that tells the producer to retry after ``retry_after_ms``."""
        return cls("shed", int(retry_after_ms))


ACCEPT = Decision("accept")
ACCEPT_EVICTING_OLDEST = Decision("accept-evicting-oldest")
DROP = Decision("drop")
SAMPLE_OUT = Decision("sample-out")
SHED = Decision("shed", None)  # the retry-after is the policy's ``retry_after_ms``, or 0
_BY_KIND = {d.kind: d for d in (ACCEPT, ACCEPT_EVICTING_OLDEST, DROP, SAMPLE_OUT, SHED)}


def normalise(value: Union[Decision, str], policy: object) -> Decision:
    """Any policy's answer as a :class:`Decision` with a definite retry-after.

    A policy may return a plain kind string (policy files written before ``Decision``), and
    a bare ``SHED`` says nothing about when to retry: then the policy's ``retry_after_ms``
    attribute is used, as it always was, or 0. Anything else is a broken policy.
    """
    decision = value if type(value) is Decision else _BY_KIND.get(value)  # type: ignore[arg-type]
    if decision is None:
        name = getattr(policy, "name", type(policy).__name__)
        raise ValueError(f"policy {name} returned {value!r}")
    if decision.retry_after_ms is None:
        return Decision.shed(getattr(policy, "retry_after_ms", 0))
    return decision


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
    # The worker's speed as measured: messages finished per second of service time over the
    # last MEASURED_RATE_WINDOW_S (so it lags a slowdown, as any real measurement does).
    measured_rate_per_s: float = 0.0
    # Block mode's credit round trip (``round_trip.py``): the smallest grant-to-data time of
    # the last ROUND_TRIP_WINDOW_S, seconds; None until the first sample.
    round_trip_s: Optional[float] = None
    # What the window bounds: messages held plus credit outstanding (in pull mode, plus
    # what was requested and has not arrived yet).
    in_flight: int = 0


MEASURED_RATE_WINDOW_S = 0.5


class OverflowPolicy:
    """Base class: accept while there is room, otherwise ``on_full``."""

    name = "base"
    uses_credit = False
    uses_demand = False  # pull mode: producers send only what the consumer requested
    discipline = "fifo"  # which waiting message the worker serves next (see buffer.py)
    # True if ``decide`` accepts every message while the buffer is below ``admission_limit``
    # and changes nothing doing so: then the core may skip asking when zero service time
    # empties the buffer as fast as it fills. A subclass with its own ``decide`` is assumed
    # not to be (it may count, sample or spend tokens) unless it says so.
    pure_below_limit = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "decide" in cls.__dict__ and "pure_below_limit" not in cls.__dict__:
            cls.pure_below_limit = False

    def decide(self, message: Message, buffer: Buffer, now: float) -> Decision:
        if buffer.depth < self.admission_limit(buffer):
            return ACCEPT
        return self.on_full(message, buffer, now)

    def on_full(self, message: Message, buffer: Buffer, now: float) -> Decision:
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
    finds the buffer full, and what it sent within its credit is never refused, even after
    the window shrank. A message that arrives anyway (a producer ignoring its credit) is
    dropped rather than letting the buffer grow past its bound; the core counts it as
    ``over_credit`` so the misbehaviour is visible.
    """

    name = "block"
    uses_credit = True
    pure_below_limit = True

    def decide(self, message: Message, buffer: Buffer, now: float) -> Decision:
        # Only records within their producer's credit get here, and credit is a promise:
        # each was sent because the consumer said there was room. So it is accepted while
        # the buffer has any, even if the window (``admission_limit``) shrank since the
        # grant; a smaller window only stops new grants (TCP never shrinks a window it
        # offered, for the same reason).
        if buffer.free_slots() > 0:
            return ACCEPT
        return self.on_full(message, buffer, now)


class PullPolicy(OverflowPolicy):
    """Pull: the consumer asks for records with REQUEST(n) as it has room (``pull.py``).

    It never asks for more than its buffer holds, so a full buffer means a producer sent
    past its demand; that record is dropped, like any tail drop.
    """

    name = "pull"
    uses_demand = True


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

    def on_full(self, message: Message, buffer: Buffer, now: float) -> Decision:
        return ACCEPT_EVICTING_OLDEST if buffer.waiting else DROP


class SamplePolicy(OverflowPolicy):
    """Sampling: above a watermark, keep only one message in every ``keep_one_in``.

    Below ``watermark`` (a fraction of capacity) everything is kept. Above it, the first of
    every ``keep_one_in`` arrivals is kept and the rest are *sampled out*. If even a kept
    message finds the buffer full, it is dropped.

    >>> from lab.core.buffer import Buffer, Message
    >>> policy, buf = SamplePolicy(keep_one_in=3, watermark=0.0), Buffer(10)
    >>> [policy.decide(Message(b"p", i), buf, 0.0).kind for i in range(4)]
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

    def decide(self, message: Message, buffer: Buffer, now: float) -> Decision:
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

    def __init__(self, retry_after_ms: int = DEFAULT_RETRY_AFTER_MS) -> None:
        if retry_after_ms < 0:
            raise ValueError("retry_after_ms cannot be negative")
        self.retry_after_ms = retry_after_ms  # configuration, fixed: read by nobody but us
        self._shed = Decision.shed(retry_after_ms)

    def on_full(self, message: Message, buffer: Buffer, now: float) -> Decision:
        return self._shed


class UnboundedPolicy(OverflowPolicy):
    """No limit at all: the naive queue. Memory grows until the memory guard stops it."""

    name = "unbounded"
    pure_below_limit = True

    def decide(self, message: Message, buffer: Buffer, now: float) -> Decision:
        return ACCEPT
