"""Module 20's pure logic: stream ids, consumer-group lag, the throttle on lag, and accounting.

A Redis stream is the log; a consumer group's *last-delivered id* is the consumer's offset.
Nothing here talks to Redis: the shell reads ``XINFO``/``XPENDING``/``INFO`` and hands the
figures in, with ``now`` in milliseconds of the broker's clock when a time is needed.

* **Lag in messages** is the entries added past the group's last-delivered id, plus the
  pending ones (delivered, not yet acknowledged). Redis 7 and Valkey report the first part
  (``lag`` in ``XINFO GROUPS``); Redis 6.2 does not, so it is computed from the lab's own
  sequence numbers: the producer numbers its entries, so the entries past the offset are the
  newest entry's number minus the number of the entry at the offset (:func:`lag_messages`).
* **Lag in seconds** is the age of the oldest entry not yet processed. A stream id is
  ``<ms>-<n>``, the broker's clock when the entry was added, so the age needs no clock of
  ours (:func:`lag_seconds`).
* **Throttle on lag** (:class:`LagThrottle`): additive increase, multiplicative decrease,
  driven by lag in seconds against a target.
* **Accounting** (:class:`SeqLedger`, :func:`stream_identity`): the lab's identity extended
  with *trimmed* (dropped by ``MAXLEN`` before anyone read them) and *redelivered*::

      added = processed_unique + trimmed + backlog + lost
      processed = processed_unique + duplicates
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

StreamId = Tuple[int, int]


def parse_id(text) -> StreamId:
    """``b"1700000000000-3"`` -> ``(1700000000000, 3)``; ``"0"`` or ``"0-0"`` -> ``(0, 0)``."""
    if isinstance(text, bytes):
        text = text.decode()
    ms, _, seq = str(text).partition("-")
    return int(ms), int(seq or 0)


def id_text(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


def lag_messages(
    pending: int,
    length: int,
    first_id: Optional[StreamId],
    last_delivered: StreamId,
    server_lag: Optional[int] = None,
    newest_seq: Optional[int] = None,
    delivered_seq: Optional[int] = None,
) -> Optional[int]:
    """Entries past the group's offset plus pending, or None when it cannot be known.

    ``server_lag`` is ``XINFO GROUPS``' ``lag`` (Redis 7+, Valkey); it is None on 6.2 and
    whenever the server cannot compute it. Otherwise: when the offset is older than the
    oldest entry, every entry in the stream is unread; else the lab's sequence numbers of the
    newest entry and of the entry at the offset give the count (one producer numbers them).
    """
    if server_lag is not None:
        return server_lag + pending
    if length == 0:
        return pending
    if first_id is None or last_delivered < first_id:
        return length + pending
    if newest_seq is not None and delivered_seq is not None:
        return max(0, newest_seq - delivered_seq) + pending
    return None


def lag_seconds(
    now_ms: int, oldest_pending: Optional[StreamId], next_unread: Optional[StreamId]
) -> float:
    """The age of the oldest entry not yet processed, by the broker's clock (0 if none)."""
    candidates = [i for i in (oldest_pending, next_unread) if i is not None]
    if not candidates:
        return 0.0
    return max(0.0, (now_ms - min(candidates)[0]) / 1000.0)


# -- throttle on lag ----------------------------------------------------------------------------
@dataclass
class LagThrottle:
    """Additive increase, multiplicative decrease, on lag in seconds against a target.

    Every ``update``: lag above the target with a growing backlog multiplies the rate by
    ``decrease`` (at most once per ``hold_s``, as lag takes that long to show a cut); lag
    above the target with a shrinking backlog (in messages) holds the rate; lag at or under
    the target grows it: about e-fold per second before the first cut (slow start from a
    low ``rate`` up to ``max_rate``), then by ``increase_fraction`` of the rate of the last
    cut per second. The rate settles around the consumer's.
    """

    target_lag_s: float = 0.5
    rate: float = 100.0
    min_rate: float = 1.0
    max_rate: float = 1e6
    decrease: float = 0.5
    increase_fraction: float = 0.1
    hold_s: float = 0.3
    last_cut_rate: Optional[float] = None
    _last_update: Optional[float] = None
    _last_cut_at: float = float("-inf")
    _last_lag: Optional[float] = None  # the last backlog seen, to tell its trend
    cuts: int = 0

    def update(self, lag_s: Optional[float], lag_messages: Optional[int], now: float) -> float:
        dt = 0.0 if self._last_update is None else max(0.0, now - self._last_update)
        self._last_update = now
        if lag_s is None:  # the broker's figures are unknown: hold the rate
            return self.rate
        # The backlog's trend is judged in messages: while a burst drains, the age of the
        # oldest entry still grows (it was added faster than it is read), the count does not.
        trend = lag_messages if lag_messages is not None else lag_s
        growing = self._last_lag is None or trend >= self._last_lag
        self._last_lag = trend
        if lag_s > self.target_lag_s:
            # over target and still growing: cut; over target and draining: hold, or the
            # backlog would drive the rate far below the consumer's
            if growing and now - self._last_cut_at >= self.hold_s:
                self.last_cut_rate = self.rate
                self.rate = max(self.min_rate, self.rate * self.decrease)
                self._last_cut_at = now
                self.cuts += 1
        elif self.last_cut_rate is None:  # slow start: double about every 0.7 s until a cut
            self.rate = min(self.max_rate, self.rate * (1.0 + dt))
        else:
            step = self.increase_fraction * self.last_cut_rate * dt
            self.rate = min(self.max_rate, self.rate + step)
        return self.rate


# -- accounting ---------------------------------------------------------------------------------
class SeqLedger:
    """Which of each producer's numbered entries a consumer process has seen and processed.

    *trimmed* is counted from gaps: within one producer, entries are delivered to a group in
    the order they were added, so a number skipped below the highest one seen was removed by
    ``MAXLEN`` before anyone read it. The count starts at ``start_seq`` (0 when this process
    created the group; otherwise the first number it sees, since earlier ones were another
    process's to read).
    """

    def __init__(self, from_start: bool = True) -> None:
        self.from_start = from_start
        self.first: Dict[str, int] = {}
        self.highest: Dict[str, int] = {}
        self.seen: Dict[str, set] = {}
        self.processed = 0
        self.duplicates = 0
        self.redelivered = 0

    def delivered(self, producer: str, seq: int, claimed: bool = False) -> None:
        if claimed:
            self.redelivered += 1
        if producer not in self.first:
            self.first[producer] = 0 if self.from_start and not claimed else seq
            self.highest[producer] = seq
            self.seen[producer] = set()
        self.first[producer] = min(self.first[producer], seq)
        if seq > self.highest[producer]:
            self.highest[producer] = seq

    def processed_one(self, producer: str, seq: int) -> bool:
        """Count one completed entry; True if it was a duplicate (processed before)."""
        self.processed += 1
        seen = self.seen.setdefault(producer, set())
        if seq in seen:
            self.duplicates += 1
            return True
        seen.add(seq)
        return False

    @property
    def processed_unique(self) -> int:
        return sum(len(s) for s in self.seen.values())

    def trimmed(self, in_progress: int = 0) -> int:
        """Numbers between the first and the highest seen that nobody delivered here.
        ``in_progress``: entries delivered but not processed yet (they are not gaps)."""
        span = sum(self.highest[p] - self.first[p] + 1 for p in self.highest)
        return max(0, span - self.processed_unique - in_progress)


def stream_identity(
    added: int, processed_unique: int, trimmed: int, backlog: int
) -> Dict[str, int]:
    """The identity's terms and what it says is lost: ``added - unique - trimmed - backlog``."""
    return {
        "added": added,
        "processed_unique": processed_unique,
        "trimmed": trimmed,
        "backlog": backlog,
        "lost": added - processed_unique - trimmed - backlog,
    }


def memory_fraction(used: int, cap: int) -> Optional[float]:
    """``used_memory`` against ``maxmemory``; None when the server has no cap (0)."""
    if cap <= 0:
        return None
    return used / cap


def field_text(fields: Dict, name: bytes, default: str = "") -> str:
    value = fields.get(name)
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def entry_seq(fields: Dict) -> Tuple[str, Optional[int]]:
    """The producer name and sequence number the lab's producer put in an entry."""
    try:
        return field_text(fields, b"p"), int(field_text(fields, b"s"))
    except ValueError:
        return field_text(fields, b"p"), None
