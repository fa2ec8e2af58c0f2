"""DATA frames on the producer's side: how big, when a partial one may go, the bytes.

Theory of operation
-------------------
The :class:`Framer` turns outbox entries into one DATA frame (an :class:`OutFrame`: the
bytes and the entries in them) and says when a frame may go.

Rules:

* **Size.** A frame holds at most ``records`` records: ``--batch``, and never more bytes
  than a consumer accepts (a bigger message would make ZeroMQ drop the connection, and
  its records with it).
* **When.** A full frame goes at once. A partial one goes only ``frame_interval_s`` after
  the previous partial frame, like Nagle's rule in TCP (``ProducerConfig.frame_interval_s``
  says why). An unpaced producer has no interval: it always has a full frame's worth.
* **A full socket.** When the shell finds the socket full (``refused``) the producer
  waits for it to become writable instead of polling; the next ``sent`` clears that.
* **Stamps.** A frame carries the credit ordinal of its first record and the callers'
  deadline (``--deadline-ms`` after each record's due time); each record its due and sent
  times as epoch seconds (this producer's monotonic time + ``epoch_offset``).
"""

from __future__ import annotations

import math
from typing import List

from lab.core import protocol
from lab.core.config import ProducerConfig
from lab.core.outbox import Entry


class OutFrame:
    """A DATA frame ready for the socket, and the messages in it."""

    __slots__ = ("data", "entries")

    def __init__(self, data: bytes, entries: List[Entry]) -> None:
        self.data = data
        self.entries = entries


class Framer:
    """Frame size, the frame interval and the encoding. See the module docstring."""

    __slots__ = (
        "records",
        "payload",
        "interval",
        "to_epoch",
        "next_at",
        "socket_full",
        "deadline_ms",
    )

    def __init__(self, config: ProducerConfig, unpaced: bool) -> None:
        room = protocol.MAX_DATA_FRAME_BYTES - protocol.HEADER.size - protocol.DATA_HEAD.size
        self.records = max(
            1, min(config.batch_max, room // (protocol.RECORD.size + config.payload_bytes))
        )
        self.payload = b"x" * config.payload_bytes
        self.interval = 0.0 if unpaced else config.frame_interval_s
        self.to_epoch = config.epoch_offset
        self.next_at = -math.inf  # a partial frame waits until then
        self.socket_full = False  # the shell's last send attempt found the socket full
        deadline = config.deadline_s
        self.deadline_ms = (
            0 if deadline is None else min(max(1, round(deadline * 1000)), protocol.MAX_DEADLINE_MS)
        )

    def may_go(self, now: float, records: int) -> bool:
        """A full frame goes at once; a partial one waits out the frame interval."""
        return records >= self.records or now >= self.next_at

    def encode(self, entries: List[Entry], now: float, first_ordinal: int) -> OutFrame:
        to_epoch = self.to_epoch
        sent = now + to_epoch
        payload = self.payload
        # plain tuples in Record's field order: encode_data takes either, tuples are cheaper
        records = [(e.seq, e.due + to_epoch, sent, e.priority, e.attempt, payload) for e in entries]
        return OutFrame(protocol.encode_data(records, first_ordinal, self.deadline_ms), entries)

    def sent(self, now: float, records: int) -> None:
        self.socket_full = False
        if records < self.records:  # full frames never wait, so never delay the next
            self.next_at = now + self.interval

    def refused(self) -> None:
        self.socket_full = True
