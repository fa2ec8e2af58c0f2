"""The producer, without I/O: a paced schedule, credit, verdicts, retries and latency.

Theory of operation
-------------------
:class:`ProducerCore` is the producer minus its socket. The shell in ``producer.py`` calls
``advance(now)`` (make what came due), ``pull_frame(now)`` when the socket can take a frame,
``mark_sent``/``mark_unsent`` with the outcome, and ``on_frame`` with what the consumer said.

A message's life::

    due (by the schedule) -> outbox -> sent (produced, in flight) -> verdict
                                                   \\-> shed -> retry later (a new attempt)

* **Outbox.** Messages wait here until they may be sent: before the consumer's WELCOME,
  and in block mode until there is credit. The outbox is bounded; when it is full the
  producer is *blocked*: it stops making messages and the slots it misses are skipped
  (``skipped``), as for a thread stuck in a blocking ``put``. So in block mode the waiting
  moves from the consumer's buffer into the producer's outbox, and shows up as *producer
  latency*: the time from a message's due time to its verdict. With the default outbox
  (as large as the consumer's window) that latency settles near ``capacity / service rate``.
* **Credit** is cumulative: every DATA frame carries the ordinal of its first record (how
  many records this producer has sent in its life), and the consumer says "you may send
  up to ordinal N"; we send while ``sent_total < N``. Lost or repeated frames, consumer
  restarts and mode switches cannot make the two ends disagree.
* **Sessions.** Every WELCOME carries the consumer's session id. A new id means the
  consumer restarted: whatever was in flight, and in block mode whatever was accepted but
  not yet confirmed processed, is sent again. Resends are not new *produced* messages.
* **Retries** (``none``, ``immediate``, ``backoff``) apply to shed verdicts only.

Rules: no sockets, no sleeping, no clock reads; times are this producer's monotonic
seconds, converted to epoch seconds only when written into a frame.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from lab.core import protocol
from lab.core.accounting import MAX_CLASSES, ProducerCounts
from lab.core.config import ProducerConfig
from lab.core.metrics import RateWindow, RecentLatency, RecoveryClock
from lab.core.pacing import PacingSchedule
from lab.core.ratelimit import make_limiter
from lab.core.retry import Backoff, CircuitBreaker

# none: give up at once; immediate: retry at once; exponential: base * 2**n (no jitter);
# backoff: exponential with full jitter, the retry-after as a floor.
RETRY_POLICIES = ("none", "immediate", "exponential", "backoff")
TIMED_OUT_MEMORY = 100_000  # how many timed-out seqs we remember, to spot late completions
DEFAULT_OUTBOX_WITHOUT_CREDIT = 10_000
HANDSHAKE_RETRY_S = 0.05
MAX_CONTROL_RATE = 1e9  # msg/s: a CONTROL asking for more is malformed (pacing cannot do it)
EVENT_LOG_LENGTH = 6


class Entry:
    """A message the producer is responsible for until it has a final verdict."""

    __slots__ = ("seq", "due", "priority", "attempt", "resend", "origin", "sent_at")

    def __init__(
        self, seq: int, due: float, priority: int = 0, attempt: int = 0, origin: int = -1
    ) -> None:
        self.seq = seq
        self.due = due
        self.priority = priority
        self.attempt = attempt
        self.resend = False
        self.origin = seq if origin < 0 else origin  # the first attempt's seq
        self.sent_at = 0.0


class OutFrame:
    """A DATA frame ready for the socket, and the messages in it."""

    __slots__ = ("data", "entries")

    def __init__(self, data: bytes, entries: List[Entry]) -> None:
        self.data = data
        self.entries = entries


class ProducerCore:
    """A producer's state machine. See the module docstring."""

    def __init__(self, config: ProducerConfig, now: float) -> None:
        if config.retry not in RETRY_POLICIES:
            raise ValueError(f"unknown retry policy {config.retry!r}")
        self.config = config
        self.name = config.name or "producer"  # the shell names it after its pid
        self.started_at = now
        self.stopped_at: Optional[float] = None
        self._rng = random.Random(config.seed)
        self.unpaced = math.isinf(config.messages_per_s)
        self.schedule = (
            None
            if self.unpaced
            else PacingSchedule(
                config.messages_per_s,
                now,
                config.profile,
                spike_at=config.spike_at,
                spike_duration=config.spike_duration,
                spike_factor=config.spike_factor,
                rng=random.Random(config.seed + 1),
            )
        )
        self.backoff = Backoff(
            config.backoff_base_s,
            config.backoff_cap_s,
            rng=self._rng,
            jitter=config.retry == "backoff",
        )
        self.limiter = config.limiter_plugin or make_limiter(
            config.limiter, config.limiter_rate, config.limiter_burst, now
        )
        self.breaker = (
            CircuitBreaker(config.breaker_failures, config.breaker_open_s, config.breaker_probes)
            if config.breaker
            else None
        )
        self.wants_confirm = config.timeout_s is not None
        self._timeouts: List[Tuple[float, int]] = []  # (deadline, seq) of accepted messages
        self._timed_out: Dict[int, None] = {}  # seqs that timed out (insertion-ordered)
        self._open: Dict[int, float] = {}  # origin -> due, requests without a response yet
        self.timed_out = 0
        self.late_completions = 0
        self.breaker_rejected = 0
        self.rate_delayed = 0
        self.response_recent = RecentLatency()
        self.class_latency = [RecentLatency() for _ in range(MAX_CLASSES)]
        self.recovery = RecoveryClock()
        self._failures = RateWindow()
        self._next_recovery_check = now
        self.payload = b"x" * config.payload_bytes
        # Records per DATA frame: --batch, and never more bytes than a consumer accepts (a
        # bigger message would make ZeroMQ drop the connection, and its records with it).
        room = protocol.MAX_DATA_FRAME_BYTES - protocol.HEADER.size - protocol.DATA_HEAD.size
        self.frame_records = max(
            1, min(config.batch_max, room // (protocol.RECORD.size + config.payload_bytes))
        )
        self._classes = list(range(len(config.priority_mix)))
        self._weights = list(config.priority_mix)
        self.counts = ProducerCounts()
        self.next_seq = 0
        self.outbox: Deque[Entry] = deque()
        self.in_flight: Dict[int, Entry] = {}
        self.unconfirmed: Dict[int, Entry] = {}
        self._retry_heap: List[Tuple[float, int, Entry]] = []
        self.credit_limit: Optional[int] = None
        self.sent_total = 0  # records put on the wire in our whole life: the credit ordinal
        self.window: Optional[int] = None
        self.consumer_mode: Optional[str] = None
        self.consumer_session: Optional[str] = None
        self.consumer_up = False
        self.last_heard = -math.inf
        self.sessions_seen = 0
        self.skipped = 0
        self.gave_up = 0
        self.duplicates = 0
        self._untracked_below = 0  # seqs below: accepted with no confirmation awaited
        self.stale_verdicts = 0
        self.malformed = 0
        self.evicted = 0
        self.latency_recent = RecentLatency()
        self._rates = {name: RateWindow() for name in _RATE_NAMES}
        self._control: List[bytes] = []
        self._next_hello = now
        self._socket_full = False  # the shell's last send attempt found the socket full
        self._frame_interval = 0.0 if self.unpaced else config.frame_interval_s
        self._next_frame_at = -math.inf  # a partial DATA frame waits until then
        self.events: Deque[Tuple[float, str]] = deque(maxlen=EVENT_LOG_LENGTH)
        self.log(now, f"{self.name} starting at {self.target_rate(now):g} msg/s")
        if self.schedule is not None and config.profile == "spike":
            start = now + config.spike_at
            self._spike_planned = (start, start + config.spike_duration)
        else:
            self._spike_planned = None

    # -- time passing -------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Heartbeat, notice a silent consumer, release due retries, make due messages."""
        if now >= self._next_hello:
            self._control.append(self._hello())
            # Knock often until the consumer answers, so the first messages do not wait.
            interval = self.config.heartbeat_s if self.consumer_up else HANDSHAKE_RETRY_S
            self._next_hello = now + min(interval, self.config.heartbeat_s)
        if self.consumer_up and now - self.last_heard > self.config.consumer_timeout_s:
            self.consumer_up = False
            self.log(
                now, f"consumer down: no answer for {self.config.consumer_timeout_s:g} s; retrying"
            )
        self._release_retries(now)
        self._expire_timeouts(now)
        self._track_recovery(now)
        if self.stopped_at is None:
            self._generate(now)

    def on_disconnect(self, now: float) -> None:
        """The shell saw the connection close (the consumer process died, most likely): the
        consumer is down now, without waiting ``consumer_timeout_s``. Knock at once, and on
        every reconnect; a WELCOME with a new session brings the resend (``_on_welcome``)."""
        if self.consumer_up:
            self.consumer_up = False
            self.log(now, "consumer down: connection lost; retrying")
        self._next_hello = now

    def drained(self) -> bool:
        """Nothing waits for a verdict, a processed confirmation or a resend: safe to leave."""
        return (
            not self.in_flight
            and not self.unconfirmed
            and not any(entry.resend for entry in self.outbox)
        )

    def _take_resends(self, n: int) -> List[Entry]:
        """The first ``n`` resends from the outbox, wherever they are; the rest stays."""
        taken: List[Entry] = []
        kept: List[Entry] = []
        for entry in self.outbox:
            (taken if entry.resend and len(taken) < n else kept).append(entry)
        self.outbox.clear()
        self.outbox.extend(kept)
        return taken

    def next_deadline(self, now: float) -> float:
        """The latest time the shell may wait before calling ``advance`` again.

        ``now`` if the outbox holds messages that may go (unless the socket refused the last
        frame: then the shell waits for it to become writable). While the outbox is full
        nothing new is made, so the schedule sets no deadline: the missed slots are
        skipped when the producer is unblocked, and a blocked producer does not spin.
        """
        sendable = 0 if self._socket_full else self.sendable()
        if self._may_send(now, sendable):
            return now
        deadline = self._next_hello
        if sendable and self._next_frame_at > now:
            deadline = min(deadline, self._next_frame_at)  # a partial frame waits its turn
        if self.stopped_at is None and len(self.outbox) < self.outbox_limit():
            if self.unpaced:
                deadline = now
            elif self.schedule is not None:
                # what comes due before the next frame may go is made when it goes
                deadline = min(deadline, max(self.schedule.next_due, self._next_frame_at))
        if self._retry_heap:
            deadline = min(deadline, self._retry_heap[0][0])
        if self._timeouts:
            deadline = min(deadline, self._timeouts[0][0])
        if self.limiter is not None and self.outbox and self.consumer_up:
            deadline = min(deadline, now + self.limiter.time_until(now))
        return max(deadline, now)

    def stop(self, now: float) -> None:
        """Stop making messages; what is in flight may still get its verdict."""
        if self.stopped_at is None:
            self.stopped_at = now
            self.log(now, "stopping")

    def take_control_frames(self) -> List[bytes]:
        out, self._control = self._control, []
        return out

    def bye_frame(self) -> bytes:
        return protocol.encode_json(protocol.BYE, {"producer": self.name})

    # -- sending ------------------------------------------------------------------------------
    def sendable(self) -> int:
        """How many outbox messages may go now (handshake done, credit allows, not stopped:
        a stopped producer only waits for verdicts; what never left stays ``pending``).

        Stopped, it still resends what a killed consumer had accepted (``_resend_all``):
        those were taken from us once, and holding them back would lose them."""
        if not self.consumer_up or not self.outbox:
            return 0
        if self.stopped_at is None:
            n = len(self.outbox)
        else:
            n = sum(1 for entry in self.outbox if entry.resend)
        if self.credit_limit is not None:
            n = min(n, self.credit_limit - self.sent_total)
        return max(0, min(n, self.frame_records))

    def ready(self, now: float) -> bool:
        """Something may go at ``now``: ``sendable``, and the rate limiter has a token (a
        producer waiting for its limiter sleeps until the next token, it does not spin)."""
        return self._may_send(now, self.sendable())

    def _may_send(self, now: float, sendable: int) -> bool:
        return (
            sendable > 0
            and self._frame_may_go(now, sendable)
            and (self.limiter is None or self.limiter.time_until(now) <= 0)
        )

    def _frame_may_go(self, now: float, records: int) -> bool:
        """A full frame goes at once; a partial one waits out the frame interval."""
        return records >= self.frame_records or now >= self._next_frame_at

    def pull_frame(self, now: float) -> Optional[OutFrame]:
        n = self.sendable()
        if n > 0 and not self._frame_may_go(now, n):
            return None
        if n > 0 and self.limiter is not None:
            n = self.limiter.take_up_to(now, n)
        if n <= 0:
            return None
        outbox = self.outbox
        if self.stopped_at is None:
            entries = [outbox.popleft() for _ in range(n)]
        else:
            entries = self._take_resends(n)
        if self.breaker is not None:
            entries = self._through_breaker(entries, now)
            if not entries:
                return None
        to_epoch = self.config.epoch_offset
        sent = now + to_epoch
        payload = self.payload
        # plain tuples in Record's field order: encode_data takes either, tuples are cheaper
        records = [(e.seq, e.due + to_epoch, sent, e.priority, e.attempt, payload) for e in entries]
        return OutFrame(protocol.encode_data(records, self.sent_total), entries)

    def mark_sent(self, frame: OutFrame, now: float) -> None:
        counts = self.counts
        in_flight = self.in_flight
        new = 0
        limited = self.limiter is not None
        for entry in frame.entries:
            in_flight[entry.seq] = entry
            entry.sent_at = now
            if limited and now - entry.due > 0.001:
                self.rate_delayed += 1
            if entry.resend:
                entry.resend = False
                counts.resent += 1
                continue
            new += 1
            if entry.attempt:
                counts.retried += 1
        counts.produced += new
        counts.in_flight += new
        self.sent_total += len(frame.entries)
        self._rates["produced"].add(now, new)
        self._socket_full = False
        if len(frame.entries) < self.frame_records:  # full frames never wait, so never delay
            self._next_frame_at = now + self._frame_interval

    def mark_unsent(self, frame: OutFrame) -> None:
        self.outbox.extendleft(reversed(frame.entries))
        self._socket_full = True

    # -- receiving ----------------------------------------------------------------------------
    def on_frame(self, frame: bytes, now: float) -> None:
        try:
            kind = protocol.frame_type(frame)
            if kind == protocol.VERDICTS:
                verdicts = protocol.decode_verdicts(frame)
            elif kind in (protocol.WELCOME, protocol.CONTROL):
                info = protocol.decode_json(frame)
            else:
                raise protocol.ProtocolError(f"{protocol.FRAME_NAMES[kind]} is not for producers")
        except protocol.ProtocolError:
            self.malformed += 1
            return
        self._heard(now)
        if kind == protocol.VERDICTS:
            self._on_verdicts(verdicts, now)
        elif kind == protocol.WELCOME:
            self._on_welcome(info, now)
        else:
            self._on_control(info, now)

    # -- live control -------------------------------------------------------------------------
    def set_rate(self, rate: float, now: float) -> None:
        if self.schedule is None:
            raise ValueError("an unpaced producer has no rate to change")
        self.schedule.set_rate(rate, now)
        self.log(now, f"rate set to {rate:g} msg/s")

    def start_spike(self, now: float, factor: float, duration: float) -> None:
        if self.schedule is None:
            raise ValueError("an unpaced producer cannot spike")
        self.schedule.start_spike(now, factor, duration)
        self.recovery.spike(now, now + duration, self._recent_p99(now))
        self.log(now, f"spike: x{factor:g} for {duration:g} s")

    # -- reports ------------------------------------------------------------------------------
    def target_rate(self, now: float) -> float:
        if self.schedule is None:
            return math.inf
        return self.schedule.rate_at(now)

    def log(self, now: float, text: str) -> None:
        self.events.append((now, text))

    def outbox_limit(self) -> int:
        if self.config.max_pending is not None:
            return self.config.max_pending
        if self.credit_limit is not None and self.window:
            return self.window
        return max(DEFAULT_OUTBOX_WITHOUT_CREDIT, self.config.batch_max)

    def lost(self) -> int:
        """Messages no living consumer holds and that will not be sent again."""
        waiting_resend = sum(1 for e in self.outbox if e.resend)
        lost = waiting_resend
        if not self.consumer_up:
            lost += len(self.in_flight) + len(self.unconfirmed)
        return lost

    def snapshot(self, now: float, rss_mb: float = 0.0, cpu_pct: float = 0.0) -> Dict[str, Any]:
        latency = self.latency_recent.summary(now)
        return {
            "v": 1,
            "role": "producer",
            "name": self.name,
            "module": self.config.module,
            "profile": self.config.profile,
            "uptime_s": round(now - self.started_at, 3),
            "target_mps": _finite(self.target_rate(now)),
            "base_mps": _finite(self.config.messages_per_s),
            "rates": {name: rate.rate(now) for name, rate in self._rates.items()},
            "totals": self.counts.as_dict(),
            "latency": {
                "p50_s": latency["p50"],
                "p95_s": latency["p95"],
                "p99_s": latency["p99"],
                "max_s": latency["max"],
            },
            "pending": len(self.outbox),
            "retry_waiting": len(self._retry_heap),
            "credit": self._credit_left(),
            "consumer_up": self.consumer_up,
            "consumer_mode": self.consumer_mode,
            "skipped": self.skipped,
            "gave_up": self.gave_up,
            "retry": self.config.retry,
            "classes": self._class_rows(now),
            "limiter": self._limiter_state(now),
            "breaker": self.breaker.state if self.breaker is not None else None,
            "breaker_rejected": self.breaker_rejected,
            "timed_out": self.timed_out,
            "late_completions": self.late_completions,
            "open_requests": len(self._open),
            "response": self._response_summary(now),
            "recovery": {
                "state": self.recovery.state(now),
                "recovery_s": self.recovery.recovery_s,
                "threshold_s": self.recovery.threshold_s,
            },
            "retry_amplification": self._amplification(),
            "rss_mb": rss_mb,
            "cpu_pct": cpu_pct,
            "events": [[round(t - self.started_at, 2), text] for t, text in self.events],
            "identity_ok": not self.counts.identity_errors(),
        }

    def summary(self, now: float) -> Dict[str, Any]:
        end = self.stopped_at if self.stopped_at is not None else now
        elapsed = max(end - self.started_at, 1e-9)
        counts = self.counts
        unique = counts.produced - counts.retried
        latency = self.latency_recent.total()
        return {
            "role": "producer",
            "name": self.name,
            "module": self.config.module,
            "profile": self.config.profile,
            "duration_s": round(elapsed, 3),
            **counts.as_dict(),
            "unique": unique,
            "pending": len(self.outbox),
            "skipped": self.skipped,
            "gave_up": self.gave_up,
            "unconfirmed": len(self.unconfirmed),
            "lost": self.lost(),
            "duplicates": self.duplicates,
            "evicted": self.evicted,
            "consumer_sessions": self.sessions_seen,
            "malformed": self.malformed,
            "target_mps": _finite(self.config.messages_per_s),
            "achieved_mps": counts.produced / elapsed,
            "retry_amplification": self._amplification(),
            "timed_out": self.timed_out,
            "late_completions": self.late_completions,
            "breaker_rejected": self.breaker_rejected,
            "breaker_transitions": self.breaker.transitions if self.breaker else 0,
            "rate_delayed": self.rate_delayed,
            "recovery_s": self.recovery.recovery_s,
            "response_p50_ms": self.response_recent.total().percentile(50) * 1e3,
            "response_p99_ms": self.response_recent.total().percentile(99) * 1e3,
            "classes": [
                {"class": c, "latency_p99_ms": h.percentile(99) * 1e3, "count": h.count}
                for c, h in enumerate(r.total() for r in self.class_latency)
                if h.count
            ],
            "latency_p50_ms": latency.percentile(50) * 1e3,
            "latency_p99_ms": latency.percentile(99) * 1e3,
            "latency_max_ms": latency.max * 1e3,
            "latency_mean_ms": latency.mean * 1e3,
            "identity_errors": self.counts.identity_errors(),
        }

    # -- internals ----------------------------------------------------------------------------
    def _hello(self) -> bytes:
        return protocol.encode_json(
            protocol.HELLO,
            {
                "producer": self.name,
                "pid": self.config.extra.get("pid", 0),
                "session": self.consumer_session,
                "sent": self.sent_total,
                "confirm": self.wants_confirm,
            },
        )

    def _heard(self, now: float) -> None:
        self.last_heard = now
        if not self.consumer_up:
            self.consumer_up = True
            self.log(now, "consumer up")

    def _generate(self, now: float) -> None:
        room = self.outbox_limit() - len(self.outbox)
        if self.unpaced:
            # As fast as possible, but only as much as can leave soon: a full outbox would
            # only add waiting time to every message.
            if len(self.outbox) >= self.config.batch_max:
                return
            dues = [now] * max(0, min(room, self.config.batch_max))
        else:
            assert self.schedule is not None
            dues = self.schedule.due_until(now, limit=max(room, 0))
            if len(dues) == max(room, 0) and self.schedule.next_due <= now:
                self.skipped += self.schedule.skip_to(now)
        if not dues:
            return
        weights = self._weights
        if len(weights) > 1:
            classes = self._rng.choices(self._classes, weights, k=len(dues))
        else:
            classes = [0] * len(dues)
        seq = self.next_seq
        append = self.outbox.append
        for due, priority in zip(dues, classes):
            append(Entry(seq, due, priority))
            seq += 1
        if self.wants_confirm:
            for offset, due in enumerate(dues):
                self._open[self.next_seq + offset] = due
        self.next_seq = seq

    def _release_retries(self, now: float) -> None:
        heap = self._retry_heap
        ready = []
        while heap and heap[0][0] <= now:
            ready.append(heapq.heappop(heap)[2])
        if ready:
            self.outbox.extendleft(reversed(ready))

    def _on_welcome(self, info: Dict[str, Any], now: float) -> None:
        session = info.get("session")
        if not isinstance(session, str):
            self.malformed += 1
            return
        if session != self.consumer_session:
            if self.consumer_session is not None:
                self.log(now, "consumer restarted: resending what it had not confirmed")
                self._resend_all()
            self.consumer_session = session
            self.sessions_seen += 1
        mode = info.get("mode")
        self.consumer_mode = mode if isinstance(mode, str) else None
        window = info.get("window")
        self.window = window if isinstance(window, int) and window > 0 else None
        limit = info.get("credit_limit")
        self._set_credit(limit if isinstance(limit, int) else None)

    def _set_credit(self, limit: Optional[int]) -> None:
        if limit is None and self.credit_limit is not None and not self.wants_confirm:
            self.unconfirmed.clear()  # no more processed confirmations will come
        if limit is not None and self.credit_limit is None and not self.wants_confirm:
            # Switched into block mode: what was accepted before was not kept for a
            # confirmation, so a "processed" for it is expected, not a duplicate.
            self._untracked_below = self.next_seq
        self.credit_limit = limit

    def _resend_all(self) -> None:
        """The consumer restarted: everything it may have lost goes out again, oldest first."""
        counts = self.counts
        again = sorted(list(self.in_flight.values()), key=lambda e: e.seq)
        for entry in self.unconfirmed.values():
            counts.accepted -= 1
            counts.in_flight += 1
            again.append(entry)
        again.sort(key=lambda e: e.seq)
        self.in_flight.clear()
        self.unconfirmed.clear()
        for entry in again:
            entry.resend = True
        self.outbox.extendleft(reversed(again))

    def _on_verdicts(self, verdicts: protocol.Verdicts, now: float) -> None:
        limit = verdicts.credit_limit
        made = self.next_seq
        if any(run.first_seq + run.count > made for run in verdicts.runs):
            self.malformed += 1  # verdicts for messages never made: ignore the whole frame
            return
        self._set_credit(None if limit == protocol.NO_CREDIT_LIMIT else limit)
        # Without a breaker, a retry plugin or confirmation deadlines, nothing happens per
        # message that a whole run cannot do at once (the hot path of a fast producer).
        whole_runs = (
            self.breaker is None and self.config.retry_plugin is None and not self.wants_confirm
        )
        for kind, first, count, retry_after_ms in verdicts.runs:
            if whole_runs and kind in _RUN_KINDS:
                self._on_run(kind, first, count, now)
                continue
            for seq in range(first, first + count):
                self._on_verdict(kind, seq, retry_after_ms, now)

    def _on_run(self, kind: int, first: int, count: int, now: float) -> None:
        """``_on_verdict`` for ``count`` messages from ``first`` that share a final verdict
        (accepted, dropped, sampled out) or a processed confirmation: the same counts, rates
        and latencies, touched once per run. Only when ``_completed`` and ``_failed`` have
        nothing to do per message (see ``_on_verdicts``)."""
        counts = self.counts
        if kind == protocol.PROCESSED:
            unconfirmed = self.unconfirmed
            for seq in range(first, first + count):
                if unconfirmed.pop(seq, None) is not None:
                    counts.processed += 1
                elif seq in self._timed_out:
                    self.late_completions += 1
                elif seq >= self._untracked_below:
                    self.duplicates += 1
            return
        pop = self.in_flight.pop
        entries = [entry for entry in map(pop, range(first, first + count), _NONES) if entry]
        self.stale_verdicts += count - len(entries)
        if not entries:
            return
        n = len(entries)
        counts.in_flight -= n
        if kind == protocol.ACCEPTED:
            counts.accepted += n
            self._rates["accepted"].add(now, n)
            if self.credit_limit is not None:
                unconfirmed = self.unconfirmed
                for entry in entries:
                    unconfirmed[entry.seq] = entry
        else:
            if kind == protocol.DROPPED:
                counts.dropped += n
                self._rates["dropped"].add(now, n)
            else:
                counts.sampled_out += n
                self._rates["sampled_out"].add(now, n)
            self._failures.add(now, n)
        latencies = [now - entry.due for entry in entries]
        self.latency_recent.record_many(now, latencies)
        if len(self._classes) == 1:  # one class: every message is class 0
            self.class_latency[0].record_many(now, latencies)
        else:
            for entry, latency in zip(entries, latencies):
                self.class_latency[min(entry.priority, MAX_CLASSES - 1)].record(now, latency)

    def _on_verdict(self, kind: int, seq: int, retry_after_ms: int, now: float) -> None:
        counts = self.counts
        if kind == protocol.PROCESSED:
            entry = self.unconfirmed.pop(seq, None)
            if entry is None:
                if seq in self._timed_out:
                    self.late_completions += 1  # work done for a caller who had given up
                elif seq >= self._untracked_below:
                    self.duplicates += 1
                return
            counts.processed += 1
            self._completed(entry, now)
            return
        if kind == protocol.EVICTED:
            counts.accepted -= 1
            counts.dropped += 1
            self.evicted += 1
            self.unconfirmed.pop(seq, None)
            self._rates["dropped"].add(now)
            return
        entry = self.in_flight.pop(seq, None)
        if entry is None:
            self.stale_verdicts += 1
            return
        counts.in_flight -= 1
        if kind == protocol.ACCEPTED:
            counts.accepted += 1
            self._rates["accepted"].add(now)
            if self.credit_limit is not None or self.wants_confirm:
                self.unconfirmed[seq] = entry
                if self.wants_confirm:
                    heapq.heappush(self._timeouts, (entry.sent_at + self.config.timeout_s, seq))
            else:
                self._completed(entry, now)
        elif kind == protocol.DROPPED:
            counts.dropped += 1
            self._rates["dropped"].add(now)
            self._failed(entry, now, final=True)
        elif kind == protocol.SAMPLED_OUT:
            counts.sampled_out += 1
            self._rates["sampled_out"].add(now)
            self._failed(entry, now, final=True)
        else:
            counts.shed += 1
            self._rates["shed"].add(now)
            self._failed(entry, now, final=False)
            if self._retry(entry, retry_after_ms, now):
                return
            self.gave_up += 1
            self._open.pop(entry.origin, None)
        self._record_latency(now, entry)

    def _retry(self, entry: Entry, retry_after_ms: int, now: float) -> bool:
        policy, plugin = self.config.retry, self.config.retry_plugin
        if entry.attempt + 1 >= self.config.max_attempts or (policy == "none" and not plugin):
            return False
        if plugin is not None:
            delay = plugin.delay(entry.attempt + 1, retry_after_ms / 1000.0, now)
            if delay is None:
                return False
            delay = max(0.0, float(delay))
        elif policy == "immediate":
            delay = 0.0
        else:
            delay = self.backoff.delay(entry.attempt + 1, retry_after_ms / 1000.0)
        deadline = self.config.deadline_s
        if deadline is not None and now + delay - entry.due > deadline:
            return False  # the caller will have given up before the retry would go
        entry.attempt += 1
        heapq.heappush(self._retry_heap, (now + delay, entry.seq, entry))
        return True

    def _on_control(self, info: Dict[str, Any], now: float) -> None:
        """A live change relayed by the consumer from ``bplab ctl`` or the demo's keys."""
        try:
            if "rate" in info:
                rate = float(info["rate"])
                if not 0 <= rate <= MAX_CONTROL_RATE:
                    raise ValueError("rate out of range")
                self.set_rate(rate, now)
            spike = info.get("spike")
            if isinstance(spike, dict):
                factor = float(spike.get("factor", 10.0))
                duration = float(spike.get("duration", 5.0))
                if not factor * self.target_rate(now) <= MAX_CONTROL_RATE:
                    raise ValueError("spike rate out of range")
                if factor > 0 and duration > 0:
                    self.start_spike(now, factor, duration)
        except (TypeError, ValueError, OverflowError):
            self.malformed += 1

    def _record_latency(self, now: float, entry: Entry) -> None:
        latency = now - entry.due
        self.latency_recent.record(now, latency)
        self.class_latency[min(entry.priority, MAX_CLASSES - 1)].record(now, latency)

    # -- requests, timeouts, the breaker, recovery (Module 15) -----------------------------
    def _completed(self, entry: Entry, now: float) -> None:
        """A success: processed (when we wait for that) or accepted (when we do not)."""
        if self.breaker is not None:
            self.breaker.record_success(now)
        hook = getattr(self.config.retry_plugin, "on_success", None)
        if hook is not None:
            hook(now)
        due = self._open.pop(entry.origin, None)
        if self.wants_confirm:
            if due is None:
                self.late_completions += 1  # another attempt of this request finished first
            else:
                self.response_recent.record(now, now - due)

    def _failed(self, entry: Entry, now: float, final: bool) -> None:
        self._failures.add(now)
        if self.breaker is not None:
            self.breaker.record_failure(now)
        hook = getattr(self.config.retry_plugin, "on_failure", None)
        if hook is not None:
            hook(now)
        if final:
            self._open.pop(entry.origin, None)

    def _expire_timeouts(self, now: float) -> None:
        """Accepted messages with no "processed" in time: the caller gives up and retries."""
        heap = self._timeouts
        while heap and heap[0][0] <= now:
            _, seq = heapq.heappop(heap)
            entry = self.unconfirmed.pop(seq, None)
            if entry is None:
                continue  # it was processed in time
            self.timed_out += 1
            self._remember_timed_out(seq)
            self._failed(entry, now, final=False)
            again = Entry(self.next_seq, entry.due, entry.priority, entry.attempt, entry.origin)
            self.next_seq += 1
            if not self._retry(again, 0, now):
                self.gave_up += 1
                self._open.pop(entry.origin, None)

    def _remember_timed_out(self, seq: int) -> None:
        self._timed_out[seq] = None
        if len(self._timed_out) > TIMED_OUT_MEMORY:
            del self._timed_out[next(iter(self._timed_out))]

    def _through_breaker(self, entries: List[Entry], now: float) -> List[Entry]:
        """While the breaker is open, requests fail at once and never reach the consumer."""
        allowed = []
        for entry in entries:
            if entry.resend or self.breaker.allow(now):  # type: ignore[union-attr]
                allowed.append(entry)
            else:
                self.breaker_rejected += 1
                self._open.pop(entry.origin, None)
        return allowed

    def _track_recovery(self, now: float) -> None:
        if now < self._next_recovery_check:
            return
        self._next_recovery_check = now + 0.1
        planned = self._spike_planned
        if planned is not None and now >= planned[0] and self.recovery.spike_start is None:
            self.recovery.spike(planned[0], planned[1], self._recent_p99(now))
        recent = self._recent_window()
        p99 = recent.merged(now).percentile(99) if recent is not None else 0.0
        self.recovery.update(now, p99, self._failures.count(now))

    def _recent_window(self) -> RecentLatency:
        return self.response_recent if self.wants_confirm else self.latency_recent

    def _recent_p99(self, now: float) -> float:
        return self._recent_window().merged(now).percentile(99)

    def _response_summary(self, now: float) -> Optional[Dict[str, float]]:
        if not self.wants_confirm:
            return None
        summary = self.response_recent.summary(now)
        return {"p50_s": summary["p50"], "p99_s": summary["p99"], "max_s": summary["max"]}

    def _class_rows(self, now: float) -> List[Dict[str, Any]]:
        rows = []
        for cls, recent in enumerate(self.class_latency):
            merged = recent.merged(now)
            if merged.count:
                rows.append({"class": cls, "p99_s": merged.percentile(99), "count": merged.count})
        return rows

    def _limiter_state(self, now: float) -> Optional[Dict[str, Any]]:
        if self.limiter is None:
            return None
        limiter = self.limiter
        tokens = getattr(limiter, "tokens", None)
        return {
            "kind": "custom" if self.config.limiter_plugin else self.config.limiter,
            "tokens": round(tokens(now), 2) if callable(tokens) else None,
            "capacity": getattr(limiter, "capacity", None),
            "rate": getattr(limiter, "rate", None),
            "delayed": self.rate_delayed,
        }

    def _amplification(self) -> float:
        """Attempts per request: 1.0 means no retries at all."""
        unique = self.counts.produced - self.counts.retried
        return self.counts.produced / unique if unique > 0 else 0.0

    def _credit_left(self) -> Optional[int]:
        if self.credit_limit is None:
            return None
        return max(0, self.credit_limit - self.sent_total)


_RATE_NAMES = ("produced", "accepted", "dropped", "sampled_out", "shed")
_RUN_KINDS = frozenset(
    (protocol.ACCEPTED, protocol.DROPPED, protocol.SAMPLED_OUT, protocol.PROCESSED)
)  # handled a whole run at a time by _on_run
_NONES = itertools.repeat(None)  # the default of dict.pop, for map()


def _finite(value: float) -> Optional[float]:
    return None if math.isinf(value) else value
