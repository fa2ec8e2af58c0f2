"""The telemetry schema: every field of the consumer's and the producer's snapshot, typed,
with its default. The one home of what a snapshot holds.

A snapshot is built by a core (``ConsumerCore.snapshot``, ``ProducerCore.snapshot``), gets
the shell's keys (``id``, ``port``, ``t``, ``telemetry_malformed``), goes over the wire as
JSON (``protocol.encode_snapshot``) or into a ``--record`` file, and comes back through
:func:`complete`: it fills the default of every field an older or different process did not
send, checks the type of every field it knows, and returns the typed value. A dashboard,
a panel, a plot or a grader then indexes it directly (``snap["rates"]["received"]``): no
field it reads can be missing or of the wrong type, because a drawing must never fail on
what came off the network.

The types below are the schema. Each ``TypedDict`` is read once at import to build its
checker (:func:`_checker`): ``int`` and ``float`` accept any finite JSON number, ``str`` a
string, ``bool`` a boolean, ``Optional[X]`` also ``null``, ``List[X]`` a list of X, a nested
``TypedDict`` an object (completed the same way), and ``Dict[str, Any]`` an object of
scalars whose keys are free (a policy's own status). Fields a schema does not list are kept
as they came, unchecked, so a newer lab version can add some.

Defaults: a number is 0, an ``Optional`` is ``None``, a string is ``""``, a boolean
``False``, a list empty, a nested object all defaults; :data:`DEFAULTS` lists the fields
that differ.
"""

from __future__ import annotations

import copy
import math
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Tuple,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)


# -- the consumer's snapshot ------------------------------------------------------------------
class ConsumerRates(TypedDict):
    received: float
    accepted: float
    processed: float
    dropped: float
    sampled_out: float
    shed: float
    goodput: float
    wasted: float


class ConsumerTotals(TypedDict):
    received: int
    accepted: int
    processed: int
    dropped: int
    sampled_out: int
    shed: int
    depth: int
    evicted: int
    over_credit: int
    goodput: int  # processed by the caller's deadline (Module 19)
    wasted: int  # processed after the caller gave up
    dequeue_dropped: int  # the part of dropped a queue discipline dropped at dequeue


# A summary of a recent latency window; ``max_s`` is 0 when the window has no sample.
class QueueWait(TypedDict):
    p50_s: float
    p99_s: float
    max_s: float


# One priority class at the consumer: cumulative counts, the recent queue wait, and the
# core's own per-class rates (None from a consumer too old to send them).
ClassRow = TypedDict(
    "ClassRow",
    {
        "class": int,
        "received": int,
        "accepted": int,
        "processed": int,
        "dropped": int,
        "sampled_out": int,
        "shed": int,
        "wait_p99_s": Optional[float],
        "received_per_s": Optional[float],
        "processed_per_s": Optional[float],
        "lost_per_s": Optional[float],
    },
)


# One producer as the consumer sees it.
class ProducerRow(TypedDict):
    name: str
    active: bool
    in_per_s: float
    credit: Optional[int]
    received: int
    accepted: int
    processed: int
    dropped: int
    sampled_out: int
    shed: int
    depth: int
    evicted: int
    over_credit: int
    goodput: int  # processed by the caller's deadline (Module 19)
    wasted: int  # processed after the caller gave up
    dequeue_dropped: int  # the part of dropped a queue discipline dropped at dequeue


Event = List[Union[float, str]]  # [seconds since start, text]


class WorkerGroup(TypedDict):
    """One group of a pool of workers (Module 17): the whole pool, or one bulkhead."""

    name: str
    classes: Optional[List[int]]  # None: every class (the shared pool)
    workers: int
    busy: int
    lag_s: float  # the age of the oldest message waiting for this group
    autoscale: Optional[List[int]]  # [min, max] when the group is autoscaled


# Module 18's transport mode (lab.core.transport): what hides in the buffers between a
# PUSH and a PULL socket; None from every other consumer. Kernel bytes are None where no
# reading is available (not Linux, or no ``ss``).
class TransportFigures(TypedDict):
    hwm: int
    payload_bytes: Optional[int]  # the producer's, None until its first snapshot
    sent: Optional[int]  # the producer's count, None until its first snapshot
    received: int
    processed: int
    in_service: int
    hidden: Optional[int]  # sent - received, now
    hidden_at_block: Optional[int]  # sent - received at the latest refused send
    sent_at_block: Optional[int]
    hidden_at_first_block: Optional[int]  # ... at the first refused send
    blocked_for_s: Optional[float]  # how long the producer's current block has lasted
    lost_if_killed: Optional[int]  # sent - processed
    producer_blocked: Optional[bool]
    blocked_s: Optional[float]
    send_q: Optional[int]  # bytes, the producer's kernel send queue
    recv_q: Optional[int]  # bytes, the consumer's kernel receive queue
    in_kernel: Optional[float]  # messages, estimated from those bytes
    in_zmq: Optional[float]  # messages, the rest of the hidden ones


class ProducerTransport(TypedDict):
    hwm: int
    payload_bytes: int
    sent: int
    blocked: bool
    blocks: int
    blocked_s: float
    blocked_for_s: float  # the current block's length so far (0: not blocked)
    sent_at_first_block: Optional[int]
    first_block_wall: Optional[float]  # wall-clock time of the first refused send
    sent_at_block: Optional[int]
    block_wall: Optional[float]  # ... of the latest refused send


class ConsumerSnapshot(TypedDict):
    v: int
    role: str
    session: str
    module: int
    mode: str
    uptime_s: float
    depth: int
    capacity: Optional[int]  # None: unbounded
    limit: Optional[float]
    max_depth: int
    oldest_age_s: float
    waiting_by_class: List[int]
    rates: ConsumerRates
    totals: ConsumerTotals
    malformed: int
    queue_wait: QueueWait
    classes: List[ClassRow]
    policy_state: Dict[str, Any]
    # the queue discipline (Module 19, ``lab.core.disciplines``): its name and state; None
    # when the buffer's own order serves
    discipline: Optional[Dict[str, Any]]
    service_rate: Optional[float]  # None: unlimited
    slowdown: float
    # the batch worker's or the pool's own figures (Modules 16, 17; lab.core.workers), with
    # their "kind"; None for one worker serving one message at a time
    worker: Optional[Dict[str, Any]]
    worker_groups: List[WorkerGroup]  # a pool's groups (its bulkheads), else empty
    producers: List[ProducerRow]
    credit_outstanding: Optional[int]
    # pull mode: records requested from active producers and not yet received (on the way
    # as a REQUEST, held by a producer as demand, or on the link as DATA); else None
    demand_outstanding: Optional[int]
    # Module 18's window: held + credit outstanding (what the window bounds), and block
    # mode's measured credit round trip (lab.core.round_trip; None until measured)
    in_flight: int
    round_trip_s: Optional[float]
    rss_mb: float
    max_memory_mb: Optional[float]
    cpu_pct: float
    stopped_by: Optional[str]
    events: List[Event]
    identity_ok: bool
    transport: Optional[TransportFigures]  # Module 18's --mode transport, else None
    # added by the shell (lab/processes/consumer.py)
    id: str
    port: Optional[int]
    t: float
    telemetry_malformed: int
    link_delay_ms: float  # the link's delay now: frames from producers arrive this late (Module 18)
    on_link: int  # frames from producers held by that delay right now


# -- the producer's snapshot ------------------------------------------------------------------
class ProducerRates(TypedDict):
    produced: float
    accepted: float
    dropped: float
    sampled_out: float
    shed: float


class ProducerTotals(TypedDict):
    produced: int
    accepted: int
    dropped: int
    sampled_out: int
    shed: int
    in_flight: int
    processed: int
    retried: int
    resent: int


# Time to verdict (or, in block mode, to processed), over the last few seconds.
class Latency(TypedDict):
    p50_s: float
    p95_s: float
    p99_s: float
    max_s: float


ProducerClassRow = TypedDict("ProducerClassRow", {"class": int, "p99_s": float, "count": int})


class Limiter(TypedDict):
    kind: str
    tokens: Optional[float]
    capacity: Optional[float]
    rate: Optional[float]
    delayed: int


class Response(TypedDict):
    p50_s: float
    p99_s: float
    max_s: float


class Recovery(TypedDict):
    state: str
    recovery_s: Optional[float]
    threshold_s: float


class Throttle(TypedDict):
    target_lag_s: float
    rate_mps: float  # the rate the throttle set
    lag_s: Optional[float]  # the last lag the consumer reported (None: none yet)
    lag_messages: Optional[int]


class Concurrency(TypedDict):
    algorithm: str  # aimd or gradient (lab.core.concurrency)
    limit: int
    outstanding: int  # sent, no final answer yet
    max_outstanding: int
    over_limit: int  # sends that left more than the limit outstanding: 0
    answers: int  # processed, each with a round trip
    losses: int
    rtt_sum_s: float
    rtt_min_s: Optional[float]
    limit_area: float  # the limit's integral over time, message-seconds
    outstanding_area: float
    elapsed_s: float
    timeout_s: Optional[float]  # aimd
    rtt_noload_s: Optional[float]  # gradient
    window_rtt_s: Optional[float]  # gradient
    windows: int  # gradient


class ProducerSnapshot(TypedDict):
    v: int
    role: str
    name: str
    module: int
    profile: str
    uptime_s: float
    target_mps: Optional[float]
    base_mps: Optional[float]
    rates: ProducerRates
    totals: ProducerTotals
    latency: Latency
    pending: int  # waiting in the outbox (for credit, or for the limiter's tokens)
    retry_waiting: int
    credit: Optional[int]  # None: the consumer is not in block mode
    demand: Optional[int]  # pull mode: requested by the consumer, not yet sent; else None
    consumer_up: bool
    consumer_mode: Optional[str]
    skipped: int
    gave_up: int
    retry: str
    classes: List[ProducerClassRow]
    limiter: Optional[Limiter]
    throttle: Optional[Throttle]  # None: no --throttle-on-lag
    concurrency: Optional[Concurrency]  # None: no --limit-algorithm
    breaker: Optional[str]
    breaker_rejected: int
    timed_out: int
    late_completions: int
    open_requests: int
    response: Optional[Response]  # None: the producer does not wait for completions
    recovery: Optional[Recovery]
    retry_amplification: Optional[float]
    rss_mb: float
    cpu_pct: float
    events: List[Event]
    identity_ok: bool
    transport: Optional[ProducerTransport]  # Module 18's --mode transport, else None
    # added by the shell (lab/processes/producer.py)
    id: str
    t: float
    link_delay_ms: float  # --link-delay-ms now: frames from the consumer arrive this late


Snapshot = Union[ConsumerSnapshot, ProducerSnapshot]
SCHEMAS = {"consumer": ConsumerSnapshot, "producer": ProducerSnapshot}

# The defaults that are not the type's own (0, None, "", False, [], all-defaults object).
DEFAULTS: Dict[str, Dict[str, Any]] = {
    "ConsumerSnapshot": {"v": 1, "mode": "?", "slowdown": 1.0, "identity_ok": True},
    "ProducerSnapshot": {"v": 1, "retry": "none", "identity_ok": True},
    "Recovery": {"state": "-"},
    "Limiter": {"kind": "?"},
}


class TelemetryError(ValueError):
    """A snapshot that does not follow this schema; counted as malformed."""


# -- completion -------------------------------------------------------------------------------
def complete(value: Any) -> Snapshot:
    """A decoded snapshot (consumer or producer) with every default filled and every known
    field's type checked; raises :class:`TelemetryError` with the first field that is wrong.

    >>> snap = complete({"role": "producer", "id": "p1", "latency": {"p99_s": 0.25}})
    >>> snap["latency"], snap["name"], snap["totals"]["produced"]
    ({'p99_s': 0.25, 'p50_s': 0.0, 'p95_s': 0.0, 'max_s': 0.0}, 'p1', 0)
    """
    if not isinstance(value, dict) or value.get("role") not in SCHEMAS:
        raise TelemetryError("telemetry snapshot lacks a known role")
    if not isinstance(value.get("id"), str):
        raise TelemetryError("telemetry snapshot lacks an id")
    if value["role"] == "producer" and "name" not in value:
        value = {**value, "name": value["id"]}  # an old producer: its id is its name
    return _COMPLETERS[value["role"]](value, "")


def empty(role: str, snapshot_id: str) -> Snapshot:
    """A snapshot of nothing at all, every field its default (for tests and placeholders)."""
    return complete({"role": role, "id": snapshot_id})


def measured_p99(summary: Optional[Dict[str, Any]]) -> Optional[float]:
    """The p99 of a latency window, or None when the window holds no sample (its max is 0):
    an empty window is "not measured", never "0 µs"."""
    if summary is None or not summary["max_s"] > 0:
        return None
    return summary["p99_s"]


# -- checkers built from the types ------------------------------------------------------------
Checker = Callable[[Any, str], Any]
_MAX_INT = 1 << 63  # a bigger integer count is nonsense (and cannot be formatted as a float)


def _wrong(path: str) -> TelemetryError:
    return TelemetryError(f"telemetry snapshot field {path!r} has the wrong type")


def _is_number(value: Any) -> bool:
    """A finite float (NaN and Infinity never parse), or an integer below 2**63 in size."""
    if isinstance(value, float):
        return math.isfinite(value)  # JSON off the network never has them; a file may
    return isinstance(value, int) and not isinstance(value, bool) and -_MAX_INT < value < _MAX_INT


def _number(value: Any, path: str) -> Any:
    if not _is_number(value):
        raise _wrong(path)
    return value


def _of_type(kind: type) -> Checker:
    def check(value: Any, path: str) -> Any:
        if not isinstance(value, kind):
            raise _wrong(path)
        return value

    return check


def _scalar_map(value: Any, path: str) -> Dict[str, Any]:
    if not isinstance(value, dict) or not all(
        v is None or isinstance(v, (str, bool)) or _is_number(v) for v in value.values()
    ):
        raise _wrong(path)
    return value


def _optional(inner: Checker) -> Checker:
    return lambda value, path: None if value is None else inner(value, path)


def _list_of(inner: Checker) -> Checker:
    def check(value: Any, path: str) -> List[Any]:
        if not isinstance(value, list):
            raise _wrong(path)
        return [inner(item, f"{path}[{i}]") for i, item in enumerate(value)]

    return check


def _event(value: Any, path: str) -> Any:
    if not (
        isinstance(value, list)
        and len(value) == 2
        and _is_number(value[0])
        and isinstance(value[1], str)
    ):
        raise _wrong(path)
    return value


def _default_of(hint: Any) -> Any:
    if hint is int:
        return 0
    if hint is float:
        return 0.0
    if hint is str:
        return ""
    if hint is bool:
        return False
    if get_origin(hint) is Union:
        return None
    if get_origin(hint) in (list, List):
        return []
    if get_origin(hint) in (dict, Dict):
        return {}
    return _typed_dict(hint)({}, "")  # a nested schema: all its defaults


def _checker(hint: Any) -> Checker:
    if hint in (int, float):
        return _number
    if hint in (str, bool):
        return _of_type(hint)
    if hint == Event:
        return _event
    origin, args = get_origin(hint), get_args(hint)
    if origin is Union and type(None) in args:
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _optional(_checker(inner))
    if origin in (list, List):
        return _list_of(_checker(args[0]))
    if origin in (dict, Dict):
        return _scalar_map
    return _typed_dict(hint)


def _typed_dict(schema: Any, foreign: Any = None) -> Checker:
    """The completer of one ``TypedDict``: defaults filled, known fields checked. A ``null``
    in a field that is not ``Optional`` counts as missing (older processes sent some).

    ``foreign`` is the other role's schema: a field only it knows is still checked when
    present (a producer snapshot with ``"depth": "deep"`` is malformed, as a consumer's
    would be), but never filled in."""
    hints = get_type_hints(schema)
    overrides = DEFAULTS.get(schema.__name__, {})
    fields: List[Tuple[str, Checker, Any]] = [
        (name, _checker(hint), overrides[name] if name in overrides else _default_of(hint))
        for name, hint in hints.items()
    ]
    others = get_type_hints(foreign) if foreign is not None else {}
    checked_only = [(name, _checker(hint)) for name, hint in others.items() if name not in hints]
    # rates, totals, latency: maps of numbers, whose unknown keys must be numbers too
    numbers_only = all(hint in (int, float) for hint in hints.values())

    def complete_one(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise _wrong(path or schema.__name__)
        out = dict(value)
        for name, check, default in fields:
            given = value.get(name)
            if given is not None:
                out[name] = check(given, f"{path}.{name}" if path else name)
            else:  # a fresh copy: a caller may change its snapshot
                out[name] = copy.deepcopy(default) if isinstance(default, (list, dict)) else default
        for name, check in checked_only:
            if value.get(name) is not None:
                check(value[name], name)
        if numbers_only:
            for name, given in value.items():
                if name not in hints:
                    _number(given, f"{path}.{name}" if path else name)
        return out

    return complete_one


_COMPLETERS: Dict[str, Checker] = {
    "consumer": _typed_dict(ConsumerSnapshot, foreign=ProducerSnapshot),
    "producer": _typed_dict(ProducerSnapshot, foreign=ConsumerSnapshot),
}
