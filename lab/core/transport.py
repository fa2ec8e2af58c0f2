"""Module 18's hidden buffers (``--mode transport``): the bookkeeping of a PUSH/PULL pair
that has no application-level flow control at all. No sockets here.

Theory of operation
-------------------
The producer hands each message to ZeroMQ with a non-blocking send. The consumer reads a
message only when its one worker is free. Between the two sit buffers neither program can
see: the producer's ZeroMQ pipe (up to ``SNDHWM`` messages), the kernel's TCP send queue
(bytes), the kernel's receive queue on the other side (bytes), and the consumer's ZeroMQ pipe
(up to ``RCVHWM`` messages). Only when all of them are full does the producer's send fail
with EAGAIN: that moment is the only backpressure it ever feels.

The number of messages in those buffers is ``sent - received``: what the producer believes
it delivered minus what the consumer has actually taken. :class:`TransportSender` records
``sent`` whenever a send is refused after one succeeded (the first such moment, and the
latest: the kernel grows its TCP buffers while they fill, so the first refusal can come
early and later ones hold more); :class:`ReceiveLog` answers how many the consumer had
received at that wall-clock moment; the difference is the figure the lesson shows.
If the consumer dies, everything it had not processed is gone although the producer
counted it as sent: :func:`crash_loss`.

The kernel's queues are read by the shell (``ss``, Linux); :func:`parse_ss` turns that text
into byte counts, and :func:`hidden_figures` splits the hidden messages into the kernel's
share (its bytes over one message's size on the wire) and ZeroMQ's share (the rest).

>>> sender = TransportSender(rate=math.inf, start=0.0)
>>> sender.sent_one(0.0); sender.sent_one(0.0); sender.refused(0.1, wall=100.1)
>>> sender.first_block
(2, 100.1)
>>> log = ReceiveLog(); log.add(100.0)
>>> hidden_at_block(sender.first_block, log)
1
"""

from __future__ import annotations

import math
import re
from array import array
from bisect import bisect_right
from typing import Any, Dict, NamedTuple, Optional, Tuple

from lab.core import protocol
from lab.core.service import ServiceModel

TRANSPORT_MODE = "transport"
DEFAULT_HWM = 1000  # ZeroMQ's own default for SNDHWM and RCVHWM
MAX_LOG = 2_000_000  # receive times kept (16 MB): hours of a lab consumer
_ADDRESS = re.compile(r"^(?:\[[0-9a-fA-F:.%\w]*\]|[0-9.]+|\*):(\d+)$")


# -- the consumer's worker --------------------------------------------------------------------
class TransportWorker:
    """One worker that takes a message only when it is free, in the lab's exact service times.

    The shell calls :meth:`finish` then, while :attr:`free`, reads one message and hands it
    to :meth:`take`; when the read finds nothing it calls :meth:`found_nothing`. A message
    read right after the previous one finished starts at that finish time, however late the
    loop woke up, so the processing rate is the model's; one read after an idle spell starts
    at ``now``.

    >>> worker = TransportWorker(ServiceModel(rate=2.0), now=0.0)
    >>> worker.take(7, 0.0); worker.finish(0.4), worker.finish(0.5)
    (None, 7)
    >>> worker.take(8, 0.9); worker.next_event(), worker.processed
    (1.0, 1)
    """

    __slots__ = ("model", "received", "processed", "busy_seq", "free_at", "_idle")

    def __init__(self, model: ServiceModel, now: float) -> None:
        self.model = model
        self.received = 0
        self.processed = 0
        self.busy_seq: Optional[int] = None
        self.free_at = now
        self._idle = True

    @property
    def free(self) -> bool:
        return self.busy_seq is None

    def take(self, seq: int, now: float) -> None:
        if self.busy_seq is not None:
            raise RuntimeError("the worker is busy: finish() first")
        start = now if self._idle else min(self.free_at, now)
        self.free_at = start + self.model.next_duration()
        self.busy_seq = seq
        self.received += 1
        self._idle = False

    def finish(self, now: float) -> Optional[int]:
        """The sequence number finished by ``now``, if the message in service is done."""
        if self.busy_seq is None or self.free_at > now:
            return None
        seq, self.busy_seq = self.busy_seq, None
        self.processed += 1
        return seq

    def found_nothing(self) -> None:
        """The socket had nothing: the next message starts when it is read."""
        self._idle = True

    def next_event(self) -> Optional[float]:
        return None if self.busy_seq is None else self.free_at


class ReceiveLog:
    """When each message was received (wall-clock seconds, the clock both processes share),
    so that "how many had the consumer received at time T" has an exact answer."""

    __slots__ = ("_times", "dropped", "_limit")

    def __init__(self, limit: int = MAX_LOG) -> None:
        self._times = array("d")
        self.dropped = 0  # the oldest times forgotten past the limit
        self._limit = limit if limit > 0 else MAX_LOG

    def add(self, wall: float) -> None:
        if len(self._times) >= self._limit:
            half = self._limit // 2
            del self._times[:half]
            self.dropped += half
        self._times.append(wall)

    def count_at(self, wall: float) -> Optional[int]:
        """Messages received at or before ``wall``; None once that moment was forgotten."""
        if self.dropped and (not self._times or wall < self._times[0]):
            return None
        return self.dropped + bisect_right(self._times, wall)

    def __len__(self) -> int:
        return self.dropped + len(self._times)


# -- the producer -----------------------------------------------------------------------------
class TransportSender:
    """The producer's side: a deadline-based schedule (message ``k`` is due at
    ``start + k / rate``, all at once for ``rate = inf``), what was sent, and when sends were
    refused (the socket full: EAGAIN)."""

    __slots__ = (
        "rate",
        "start",
        "sent",
        "blocked",
        "blocks",
        "first_block",
        "last_block",
        "_blocked_since",
        "_blocked_total",
    )

    def __init__(self, rate: float, start: float) -> None:
        if not rate > 0:
            raise ValueError("the rate must be > 0 messages per second")
        self.rate = rate
        self.start = start
        self.sent = 0
        self.blocked = False
        self.blocks = 0  # how many times a send was refused after one succeeded
        self.first_block: Optional[Tuple[int, float]] = None  # (sent, wall time)
        self.last_block: Optional[Tuple[int, float]] = None  # the latest block's
        self._blocked_since = 0.0
        self._blocked_total = 0.0

    def owed(self, now: float) -> float:
        """Messages due by ``now`` and not sent yet (``inf``: unpaced)."""
        if math.isinf(self.rate):
            return math.inf
        due = math.floor((now - self.start) * self.rate + 1e-9) + 1
        return float(max(0, due - self.sent))

    def next_due(self) -> float:
        """When the next message not yet sent is due."""
        if math.isinf(self.rate):
            return self.start
        return self.start + self.sent / self.rate

    def sent_one(self, now: float) -> None:
        if self.blocked:
            self.blocked = False
            self._blocked_total += now - self._blocked_since
        self.sent += 1

    def refused(self, now: float, wall: float) -> None:
        """A send came back EAGAIN: every buffer on the way is full."""
        if self.blocked:
            return
        self.blocked, self._blocked_since = True, now
        self.blocks += 1
        self.last_block = (self.sent, wall)
        if self.first_block is None:
            self.first_block = self.last_block

    def blocked_s(self, now: float) -> float:
        return self._blocked_total + (now - self._blocked_since if self.blocked else 0.0)

    def blocked_for(self, now: float) -> float:
        """How long the current block has lasted (0 when not blocked)."""
        return now - self._blocked_since if self.blocked else 0.0

    def status(self, now: float) -> Dict[str, Any]:
        """The ``transport`` object of the producer's snapshot and summary."""
        first, last = self.first_block, self.last_block
        return {
            "sent": self.sent,
            "blocked": self.blocked,
            "blocks": self.blocks,
            "blocked_s": round(self.blocked_s(now), 6),
            "blocked_for_s": round(self.blocked_for(now), 6),
            "sent_at_first_block": None if first is None else first[0],
            "first_block_wall": None if first is None else first[1],
            "sent_at_block": None if last is None else last[0],
            "block_wall": None if last is None else last[1],
        }


# -- the figures ------------------------------------------------------------------------------
class KernelQueues(NamedTuple):
    """Bytes in the kernel's queues of the data connection(s): the producer side's unsent
    or unacknowledged bytes, and the consumer side's received but unread bytes."""

    send_q: int
    recv_q: int
    connections: int


def parse_ss(text: str, port: int) -> Optional[KernelQueues]:
    """The queues of TCP connections to or from ``port`` in ``ss -tn`` output (with or
    without its header, state column and ``-i`` lines); None when there is none.

    >>> parse_ss('''State Recv-Q Send-Q Local Address:Port Peer Address:Port
    ... ESTAB 0      1181184 127.0.0.1:51234    127.0.0.1:18000
    ... ESTAB 917504 0       127.0.0.1:18000    127.0.0.1:51234''', 18000)
    KernelQueues(send_q=1181184, recv_q=917504, connections=1)
    """
    send_q = recv_q = sides = 0
    for line in text.splitlines():
        words = line.split()
        for i in range(2, len(words) - 1):
            local, peer = _ADDRESS.match(words[i]), _ADDRESS.match(words[i + 1])
            if local is None or peer is None:
                continue
            if not (words[i - 2].isdigit() and words[i - 1].isdigit()):
                break
            queued_in, queued_out = int(words[i - 2]), int(words[i - 1])
            if int(peer.group(1)) == port:  # the producer's end
                send_q += queued_out
                sides += 1
            elif int(local.group(1)) == port:  # the consumer's end
                recv_q += queued_in
                sides += 1
            break
    return None if sides == 0 else KernelQueues(send_q, recv_q, (sides + 1) // 2)


def wire_bytes(payload_bytes: int) -> int:
    """One message's size on the TCP stream: the lab's DATA frame of one record, plus
    ZeroMQ's frame header (2 bytes up to 255 bytes of body, else 9)."""
    body = protocol.HEADER.size + protocol.DATA_HEAD.size + protocol.RECORD.size + payload_bytes
    return body + (2 if body <= 255 else 9)


def hidden_at_block(first_block: Optional[Tuple[int, float]], log: ReceiveLog) -> Optional[int]:
    """``sent - received`` at the moment the producer's send was first refused."""
    if first_block is None:
        return None
    received = log.count_at(first_block[1])
    return None if received is None else max(0, first_block[0] - received)


def crash_loss(sent: int, processed: int) -> int:
    """What a consumer that died had not finished although the producer counted it as sent:
    the buffers' content and the message in service."""
    return max(0, sent - processed)


def hidden_figures(
    sent: Optional[int],
    received: int,
    processed: int,
    kernel: Optional[KernelQueues],
    payload_bytes: Optional[int],
) -> Dict[str, Any]:
    """The rows of the transport panel: hidden now, and its split between kernel and ZeroMQ
    (estimated from the kernel's bytes; None when either is unknown)."""
    hidden = None if sent is None else max(0, sent - received)
    in_kernel = None
    if kernel is not None and payload_bytes is not None:
        in_kernel = (kernel.send_q + kernel.recv_q) / wire_bytes(payload_bytes)
    in_zmq = None
    if hidden is not None and in_kernel is not None:
        in_zmq = max(0.0, hidden - in_kernel)
    return {
        "sent": sent,
        "received": received,
        "processed": processed,
        "in_service": received - processed,
        "hidden": hidden,
        "lost_if_killed": None if sent is None else crash_loss(sent, processed),
        "send_q": None if kernel is None else kernel.send_q,
        "recv_q": None if kernel is None else kernel.recv_q,
        "in_kernel": None if in_kernel is None else round(in_kernel, 1),
        "in_zmq": None if in_zmq is None else round(in_zmq, 1),
    }
