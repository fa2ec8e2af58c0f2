"""The wire protocol: bytes in, events out, and back. No sockets here.

Theory of operation
-------------------
This file is the only place that knows the byte layout of a frame; ``docs/protocol.md``
describes the same layout for people who write their own producer. Everything that reaches
the lab from the network goes through a ``decode_*`` function here, which either returns a
well-formed event or raises :class:`ProtocolError` with a short reason. Callers count those
errors as *malformed* and carry on: bad input is never fatal.

Every frame on the data socket starts with a 4-byte header::

    magic "BP" (2 bytes) | version (u8, = 2) | frame type (u8)

Version 2 added the callers' deadline to the DATA frame's head. A version-1 HELLO is
answered with a version-1 WELCOME that carries an ``error`` (``version_error_welcome``),
so an old producer learns why instead of waiting for a consumer that never answers.

All integers are little-endian. Times on the wire are float64 seconds since the Unix epoch.
"""

from __future__ import annotations

import json
import operator
import struct
from enum import IntEnum
from itertools import islice
from typing import Any, Dict, Iterable, List, NamedTuple, Sequence, Tuple

from lab.core import telemetry

MAGIC = b"BP"
VERSION = 2
OLD_VERSIONS = (1,)  # peers of these versions get an error WELCOME to their HELLO


class FrameType(IntEnum):
    """The frame type byte of the header. Members are ints, so they pack and compare as the
    byte itself (the hot path pays nothing for the names)."""

    HELLO = 1  # producer -> consumer: JSON object; also the producer's heartbeat
    WELCOME = 2  # consumer -> producer: JSON object; answer to every HELLO
    DATA = 3  # producer -> consumer: a batch of data records
    VERDICTS = 4  # consumer -> producer: credit limit and runs of verdicts
    BYE = 5  # producer -> consumer: I am leaving, take my credit back
    CONTROL = 6  # consumer -> producer: JSON object, a live change (rate, spike)
    REQUEST = 7  # consumer -> producer: request(n), n more records of demand (pull mode)


class VerdictKind(IntEnum):
    """The kind byte of a run in a VERDICTS frame."""

    ACCEPTED = 1  # taken into the buffer
    DROPPED = 2  # discarded on arrival, buffer full
    SAMPLED_OUT = 3  # discarded by sampling
    SHED = 4  # rejected; the producer may retry after retry_after_ms
    EVICTED = 5  # was accepted, later discarded to make room (drop-oldest): now counts as dropped
    PROCESSED = 6  # finished by the consumer's worker (sent in block mode only)


# The module-level names every caller uses are the members themselves.
HELLO = FrameType.HELLO
WELCOME = FrameType.WELCOME
DATA = FrameType.DATA
VERDICTS = FrameType.VERDICTS
BYE = FrameType.BYE
CONTROL = FrameType.CONTROL
REQUEST = FrameType.REQUEST
ACCEPTED = VerdictKind.ACCEPTED
DROPPED = VerdictKind.DROPPED
SAMPLED_OUT = VerdictKind.SAMPLED_OUT
SHED = VerdictKind.SHED
EVICTED = VerdictKind.EVICTED
PROCESSED = VerdictKind.PROCESSED

FRAME_NAMES = {kind: kind.name for kind in FrameType}
VERDICT_NAMES = {kind: kind.name.lower() for kind in VerdictKind}
_FRAME_TYPE_OF = {int(kind): kind for kind in FrameType}

HEADER = struct.Struct("<2sBB")
# record count, ordinal of the first record, deadline_ms: each record's caller gives up
# deadline_ms after its due time (0: no deadline)
DATA_HEAD = struct.Struct("<IQI")
MAX_DEADLINE_MS = (1 << 32) - 1
RECORD = struct.Struct("<QddBBI")  # seq, due, sent, priority, attempt, payload length
VERDICTS_HEAD = struct.Struct("<QI")  # credit limit (cumulative), number of runs
REQUEST_BODY = struct.Struct("<Q")  # n, the demand added (never 0)
RUN = struct.Struct("<BQII")  # kind, first seq, count, retry_after_ms
MAX_RETRY_MS = (1 << 32) - 1  # the longest retry_after_ms a run can carry

MAX_JSON_BYTES = 16 * 1024
MAX_RECORDS_PER_FRAME = 65_536
MAX_DATA_FRAME_BYTES = 4 * 1024 * 1024
NO_CREDIT_LIMIT = (1 << 64) - 1  # "no credit in use": the consumer is not in block mode
MAX_ORDINAL = 1 << 63  # ordinals at or above this are malformed (room to add credit safely)
MAX_RUNS_PER_FRAME = 20_000  # a VERDICTS frame stays far below any receiver's size limit

TELEMETRY_TOPIC = b"bplab.v1"
MAX_SNAPSHOT_BYTES = 256 * 1024


class ProtocolError(ValueError):
    """A frame that does not follow ``docs/protocol.md``; counted as malformed."""


class Record(NamedTuple):
    """One data message on the wire."""

    seq: int
    due: float
    sent: float
    priority: int = 0
    attempt: int = 0
    payload: bytes = b""


class Run(NamedTuple):
    """``count`` consecutive sequence numbers from ``first_seq`` that share a verdict."""

    kind: int
    first_seq: int
    count: int
    retry_after_ms: int = 0


class Verdicts(NamedTuple):
    credit_limit: int
    runs: List[Run]


# -- header --------------------------------------------------------------------------------
def frame_type(frame: bytes) -> FrameType:
    """The type of a frame, after checking magic and version."""
    if len(frame) < HEADER.size:
        raise ProtocolError(f"frame of {len(frame)} bytes is shorter than the 4-byte header")
    magic, version, kind = HEADER.unpack_from(frame)
    if magic != MAGIC:
        raise ProtocolError("bad magic (expected b'BP')")
    if version != VERSION:
        raise ProtocolError(
            f"protocol version {version} is not supported (this lab speaks {VERSION})"
        )
    member = _FRAME_TYPE_OF.get(kind)
    if member is None:
        raise ProtocolError(f"unknown frame type {kind}")
    return member


def _header(kind: int) -> bytes:
    return HEADER.pack(MAGIC, VERSION, kind)


def old_hello_version(frame: bytes) -> int:
    """The version of a HELLO from an older protocol version (0 if ``frame`` is not one)."""
    if len(frame) < HEADER.size:
        return 0
    magic, version, kind = HEADER.unpack_from(frame)
    return version if magic == MAGIC and version in OLD_VERSIONS and kind == HELLO else 0


def version_error_welcome(version: int) -> bytes:
    """The answer to a HELLO of an old ``version``: a WELCOME in that version's own header,
    whose JSON body a decoder of that version reads, with an ``error`` and no session."""
    body = {
        "error": f"this consumer speaks protocol version {VERSION}, the producer spoke "
        f"{version}: upgrade the producer (DATA frames now carry the callers' deadline)",
        "protocol": VERSION,
    }
    return HEADER.pack(MAGIC, version, WELCOME) + json.dumps(body).encode()


def welcome_error(frame: bytes) -> str:
    """The ``error`` of a WELCOME of any version ('' when the frame is no error WELCOME):
    how a producer learns that the consumer does not speak its version."""
    if len(frame) < HEADER.size or frame[:2] != MAGIC or frame[3] != WELCOME:
        return ""
    try:
        body = _loads(frame[HEADER.size : HEADER.size + MAX_JSON_BYTES])
    except (ValueError, RecursionError):
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) and error else ""


# -- JSON frames (HELLO, WELCOME, BYE, CONTROL) ----------------------------------------------
def encode_json(kind: int, body: Dict[str, Any]) -> bytes:
    return _header(kind) + json.dumps(body, separators=(",", ":")).encode()


def decode_json(frame: bytes) -> Dict[str, Any]:
    body = frame[HEADER.size :]
    if len(body) > MAX_JSON_BYTES:
        raise ProtocolError(f"JSON body of {len(body)} bytes exceeds {MAX_JSON_BYTES}")
    if not body:
        return {}
    try:
        value = _loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested too deep
        raise ProtocolError(f"body is not JSON: {exc.__class__.__name__}") from None
    if not isinstance(value, dict):
        raise ProtocolError("JSON body must be an object")
    return value


# -- DATA ----------------------------------------------------------------------------------
def encode_data(records: Sequence[Record], first_ordinal: int = 0, deadline_ms: int = 0) -> bytes:
    """One DATA frame carrying ``records`` (at most MAX_RECORDS_PER_FRAME).

    ``first_ordinal`` is how many records this producer had sent before this frame, over
    its whole life (retries and resends included): the number block-mode credit counts.
    ``deadline_ms`` (0: none) is how long after its ``due`` time each record's caller waits.
    A record may also be a plain tuple in :class:`Record`'s field order (cheaper to make).
    """
    if len(records) > MAX_RECORDS_PER_FRAME:
        raise ValueError(f"at most {MAX_RECORDS_PER_FRAME} records per frame")
    pack = RECORD.pack
    parts = [_header(DATA), DATA_HEAD.pack(len(records), first_ordinal, deadline_ms)]
    for seq, due, sent, priority, attempt, payload in records:
        parts.append(pack(seq, due, sent, priority, attempt, len(payload)))
        if payload:
            parts.append(payload)
    return b"".join(parts)


def decode_data(frame: bytes) -> List[Record]:
    """The records of a DATA frame; the whole frame is rejected if any part is malformed."""
    return decode_data_frame(frame)[1]


def decode_data_frame(frame: bytes) -> Tuple[int, List[Record]]:
    """``(first_ordinal, records)`` of a DATA frame (see :func:`encode_data`)."""
    if len(frame) > MAX_DATA_FRAME_BYTES:
        raise ProtocolError(f"DATA frame of {len(frame)} bytes exceeds {MAX_DATA_FRAME_BYTES}")
    offset = HEADER.size
    if len(frame) < offset + DATA_HEAD.size:
        raise ProtocolError("DATA frame too short for its record count and ordinal")
    count, first_ordinal, _ = DATA_HEAD.unpack_from(frame, offset)
    if first_ordinal + count >= MAX_ORDINAL:
        raise ProtocolError("DATA frame ordinal out of range (must stay below 2**63)")
    offset += DATA_HEAD.size
    if count > MAX_RECORDS_PER_FRAME:
        raise ProtocolError(f"DATA frame claims {count} records (limit {MAX_RECORDS_PER_FRAME})")
    end = len(frame)
    size = RECORD.size
    if end - offset == count * size:
        # Exactly one header per record: no payloads, unless a length lies (then the loop
        # below says what is wrong). The common case, decoded in one pass.
        rows = RECORD.iter_unpack(memoryview(frame)[offset:])
        make = Record._make
        fast = [make((s, d, t, p, a, b"")) for s, d, t, p, a, n in rows if not n]
        if len(fast) == count:
            return first_ordinal, fast
    unpack = RECORD.unpack_from
    records: List[Record] = []
    append = records.append
    for _ in range(count):
        if offset + size > end:
            raise ProtocolError("DATA frame truncated inside a record header")
        seq, due, sent, priority, attempt, length = unpack(frame, offset)
        offset += size
        if length:
            if offset + length > end:
                raise ProtocolError("DATA frame truncated inside a payload")
            payload = frame[offset : offset + length]
            offset += length
        else:
            payload = b""
        append(Record(seq, due, sent, priority, attempt, payload))
    if offset != end:
        raise ProtocolError(f"DATA frame has {end - offset} bytes after its last record")
    return first_ordinal, records


# -- REQUEST -------------------------------------------------------------------------------
def encode_request(n: int) -> bytes:
    """request(n): ``n`` more records of demand, added to what was asked before."""
    if not 0 < n < 1 << 64:
        raise ValueError("request(n) needs 1 <= n < 2**64")
    return _header(REQUEST) + REQUEST_BODY.pack(n)


def decode_request(frame: bytes) -> int:
    """The ``n`` of a REQUEST frame; a zero n is malformed (Reactive Streams rule 3.9)."""
    if len(frame) != HEADER.size + REQUEST_BODY.size:
        raise ProtocolError(f"REQUEST frame must be {HEADER.size + REQUEST_BODY.size} bytes")
    (n,) = REQUEST_BODY.unpack_from(frame, HEADER.size)
    if n == 0:
        raise ProtocolError("request(0) is not allowed")
    return n


def data_deadline_ms(frame: bytes) -> int:
    """The ``deadline_ms`` of a DATA frame that :func:`decode_data_frame` accepted."""
    return DATA_HEAD.unpack_from(frame, HEADER.size)[2]


# -- VERDICTS ------------------------------------------------------------------------------
def encode_verdicts(credit_limit: int, runs: Iterable[Tuple[int, int, int, int]]) -> bytes:
    runs = list(runs)
    parts = [_header(VERDICTS), VERDICTS_HEAD.pack(credit_limit, len(runs))]
    pack = RUN.pack
    parts.extend(pack(kind, first, count, retry) for kind, first, count, retry in runs)
    return b"".join(parts)


def decode_verdicts(frame: bytes) -> Verdicts:
    offset = HEADER.size
    if len(frame) < offset + VERDICTS_HEAD.size:
        raise ProtocolError("VERDICTS frame too short")
    credit_limit, count = VERDICTS_HEAD.unpack_from(frame, offset)
    offset += VERDICTS_HEAD.size
    if len(frame) != offset + count * RUN.size:
        raise ProtocolError("VERDICTS frame length does not match its run count")
    runs = []
    for _ in range(count):
        run = Run(*RUN.unpack_from(frame, offset))
        if run.kind not in VERDICT_NAMES:
            raise ProtocolError(f"unknown verdict kind {run.kind}")
        runs.append(run)
        offset += RUN.size
    return Verdicts(credit_limit, runs)


class RunBuilder:
    """Collects verdicts one sequence number at a time and merges them into runs.

    >>> builder = RunBuilder()
    >>> for seq in (7, 8, 9): builder.add(ACCEPTED, seq)
    >>> builder.add(DROPPED, 10)
    >>> builder.take() == [(ACCEPTED, 7, 3, 0), (DROPPED, 10, 1, 0)]
    True
    """

    __slots__ = ("_runs", "_kind", "_first", "_count", "_retry")

    def __init__(self) -> None:
        self._runs: List[Tuple[int, int, int, int]] = []
        self._count = 0
        self._kind = self._first = self._retry = 0

    def add(self, kind: int, seq: int, retry_after_ms: int = 0) -> None:
        if (
            self._count
            and kind == self._kind
            and retry_after_ms == self._retry
            and seq == self._first + self._count
        ):
            self._count += 1
            return
        self._close()
        self._kind, self._first, self._count, self._retry = kind, seq, 1, retry_after_ms

    def extend(self, kind: int, seqs: Sequence[int]) -> None:
        """``add(kind, seq)`` for each of ``seqs`` in order (no retry-after), cheaper: a
        block of consecutive seqs (the common case) is one comparison pass in C."""
        if not seqs:
            return
        if not (self._count and kind == self._kind and self._retry == 0):
            self._close()
        first, count = self._first, self._count
        n = len(seqs)
        if seqs[-1] - seqs[0] == n - 1 and all(map(operator.lt, seqs, islice(seqs, 1, None))):
            if count and seqs[0] == first + count:
                count += n
            else:
                self._close()
                first, count = seqs[0], n
        else:
            runs = self._runs
            for seq in seqs:
                if count and seq == first + count:
                    count += 1
                else:
                    if count:
                        runs.append((kind, first, count, 0))
                    first, count = seq, 1
        self._kind, self._first, self._count, self._retry = kind, first, count, 0

    def take(self) -> List[Tuple[int, int, int, int]]:
        self._close()
        runs, self._runs = self._runs, []
        return runs

    def __bool__(self) -> bool:
        return bool(self._count or self._runs)

    def _close(self) -> None:
        if self._count:
            self._runs.append((self._kind, self._first, self._count, self._retry))
            self._count = 0


# -- telemetry -----------------------------------------------------------------------------
def encode_snapshot(snapshot: Dict[str, Any]) -> List[bytes]:
    """A telemetry snapshot as a two-frame PUB message: topic, JSON."""
    return [TELEMETRY_TOPIC, json.dumps(snapshot, separators=(",", ":")).encode()]


def decode_snapshot(frames: Sequence[bytes]) -> telemetry.Snapshot:
    """A telemetry message as a typed snapshot, completed by ``telemetry.complete``."""
    if len(frames) != 2:
        raise ProtocolError(f"telemetry message has {len(frames)} frames, expected 2")
    topic, body = frames
    if topic != TELEMETRY_TOPIC:
        raise ProtocolError("unknown telemetry topic")
    if len(body) > MAX_SNAPSHOT_BYTES:
        raise ProtocolError("telemetry snapshot too large")
    try:
        snapshot = _loads(body)
    except (ValueError, RecursionError):
        raise ProtocolError("telemetry snapshot is not JSON") from None
    try:
        return telemetry.complete(snapshot)
    except telemetry.TelemetryError as exc:
        raise ProtocolError(str(exc)) from None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number the lab sends")


def _loads(body: bytes) -> Any:
    """``json.loads`` that refuses NaN and Infinity (a dashboard cannot format them)."""
    return json.loads(body, parse_constant=_reject_constant)
