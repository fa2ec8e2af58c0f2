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
* **Throttle on lag** (:class:`LagThrottle`): a target-lag rule, from the backlog's trend
  (the rate the group drains) and its distance from a backlog aimed at.
* **Latency** (:func:`entry_latencies`): from an entry's add, its id's milliseconds by the
  broker's clock, to when the consumer finished it, read on the broker's clock too (the
  shell passes its wall clock plus the offset it measured with ``TIME``).
* **Claims** (:func:`split_claim`): ``XAUTOCLAIM``'s reply in both dialects.
* **Accounting** (:class:`SeqLedger`, :func:`stream_identity`): the lab's identity extended
  with *trimmed* (dropped by ``MAXLEN`` before anyone read them) and *redelivered*::

      added = processed_unique + trimmed + backlog + lost
      processed = processed_unique + duplicates
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

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
    newest_id: Optional[StreamId] = None,
) -> Optional[int]:
    """Entries in the stream past the group's offset, plus pending; None if it cannot be known.

    An offset at or past the newest entry leaves nothing unread; one older than the oldest
    entry leaves the whole stream unread. In between, ``server_lag`` is ``XINFO GROUPS``'
    ``lag`` (Redis 7+, Valkey; None on 6.2 or when the server cannot tell); it also counts
    entries trimmed before anyone read them, which are no longer in the stream, so it is
    capped at the stream's length. Without it, the lab's sequence numbers of the newest entry
    and of the entry at the offset give the count (one producer numbers them).
    """
    if length == 0 or (newest_id is not None and last_delivered >= newest_id):
        return pending
    if first_id is None or last_delivered < first_id:
        return length + pending
    if server_lag is not None:
        return min(server_lag, length) + pending
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


def entry_latencies(entry_ids: Iterable[Any], done_ms: float) -> List[float]:
    """Seconds from each entry's add (the milliseconds of its id) to ``done_ms``, both on the
    broker's clock. An id keeps whole milliseconds, so each figure is up to 1 ms long.

    >>> entry_latencies([b"1000-0", "1250-7"], 1500.0)
    [0.5, 0.25]
    """
    return [max(0.0, (done_ms - parse_id(entry_id)[0]) / 1000.0) for entry_id in entry_ids]


def split_claim(reply: Sequence[Any]) -> Tuple[List[Any], List[Any], int]:
    """``XAUTOCLAIM``'s reply as (entries to process, deleted ids, nil entries).

    Redis 6.2 replies ``[next, entries]`` and gives an entry that was trimmed away while
    pending as nil (redis-py: ``(None, None)``), leaving it pending. Redis 7 and Valkey reply
    ``[next, entries, deleted ids]``: the trimmed ones are listed apart and already removed
    from the pending list.

    >>> split_claim([b"0-0", [(b"1-0", {b"s": b"1"}), (None, None)]])
    ([(b'1-0', {b's': b'1'})], [], 1)
    >>> split_claim([b"0-0", [], [b"1-1", b"1-2"]])
    ([], [b'1-1', b'1-2'], 0)
    """
    claimed = list(reply[1]) if len(reply) > 1 and reply[1] else []
    entries = [entry for entry in claimed if entry and entry[0] is not None and entry[1]]
    deleted = list(reply[2]) if len(reply) > 2 and reply[2] else []
    return entries, deleted, len(claimed) - len(entries)


# -- throttle on lag ----------------------------------------------------------------------------
@dataclass
class LagThrottle:
    """A target-lag rule: estimate how fast the group drains, send that plus a correction.

    Every ``update`` compares the backlog (lag in messages) with the last one: what left the
    stream is what was sent minus the growth, ``drain = rate - d(backlog)/dt``, smoothed with
    weight ``smoothing``. The new rate is that drain plus the gap between the backlog aimed
    at (``aim_fraction`` of ``target_lag_s`` worth of drain) and the backlog there is, closed
    over ``horizon_s``. While the lag is under half the aim the group may be idle, so the
    rate also probes upwards by 20% an update. It never passes ``max_rate`` nor more than
    doubles at once. It aims well under the target because lag in seconds is a late signal:
    the age of the oldest entry grows only at ``1 - drain/rate`` seconds per second.
    """

    target_lag_s: float = 0.5
    rate: float = 100.0
    min_rate: float = 1.0
    max_rate: float = 1e6
    aim_fraction: float = 0.1
    horizon_s: float = 1.0
    smoothing: float = 0.4
    drain_estimate: Optional[float] = None
    _last_backlog: Optional[int] = None
    _last_update: Optional[float] = None

    def update(self, lag_s: Optional[float], lag_messages: Optional[int], now: float) -> float:
        if lag_s is None or lag_messages is None:  # the broker's figures are unknown: hold
            return self.rate
        if self._last_backlog is not None and self._last_update is not None:
            dt = now - self._last_update
            if dt > 0:
                drain = max(0.0, self.rate - (lag_messages - self._last_backlog) / dt)
                old = self.drain_estimate
                self.drain_estimate = drain if old is None else old + self.smoothing * (drain - old)
        self._last_backlog, self._last_update = lag_messages, now
        if self.drain_estimate is None:
            return self.rate
        aim_s = self.aim_fraction * self.target_lag_s
        wanted = self.drain_estimate + (self.drain_estimate * aim_s - lag_messages) / self.horizon_s
        if lag_s < aim_s / 2:
            wanted = max(wanted, self.rate * 1.2)  # maybe idle: probe for more
        self.rate = max(self.min_rate, min(self.max_rate, wanted, 2 * self.rate))
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


class WindowRates:
    """Per-second rates of cumulative counters, over windows of at least ``window_s``.

    >>> rates = WindowRates()
    >>> rates.update(0.0, {"added": 0})
    {'added': 0.0}
    >>> rates.update(1.5, {"added": 300})
    {'added': 200.0}
    """

    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self._start: Optional[Tuple[float, Dict[str, float]]] = None
        self.rates: Dict[str, float] = {}

    def update(self, now: float, counters: Dict[str, float]) -> Dict[str, float]:
        if self._start is None:
            self._start = (now, dict(counters))
            self.rates = {key: 0.0 for key in counters}
        started, before = self._start
        span = now - started
        if span >= self.window_s:
            self.rates = {
                key: max(0.0, (value - before.get(key, value)) / span)
                for key, value in counters.items()
            }
            self._start = (now, dict(counters))
        return dict(self.rates)


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
