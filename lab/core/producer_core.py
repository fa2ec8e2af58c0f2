"""The producer, without I/O: the facade over its parts (pacing, outbox, credit, verdicts...).

Theory of operation
-------------------
:class:`ProducerCore` is the producer minus its socket. The shell in ``producer.py`` calls
``advance(now)`` (make what came due), ``pull_frame(now)`` when the socket can take a frame,
``mark_sent``/``mark_unsent`` with the outcome, and ``on_frame`` with what the consumer said.

A message's life::

    due (by the schedule) -> outbox -> sent (produced, in flight) -> verdict
                                                   \\-> shed -> retry later (a new attempt)

The core holds the parts and passes messages between them; each part's module says its
rules:

* ``making.MessageMaker``: the pace (``pacing.PacingSchedule``; unpaced: as fast as the
  outbox empties), sequence numbers, priority classes;
* ``outbox.Outbox``: made, not sent yet; bounded: a full outbox blocks the producer and
  the slots it misses are ``skipped``. In block mode its limit is the consumer's window, so
  the waiting moves from the consumer's buffer into the producer and shows as *producer
  latency* (due time to verdict), near ``capacity / service rate``;
* ``link.ConsumerLink``: handshake, heartbeat, sessions, cumulative credit;
* ``framing.Framer``: frame size and the frame interval, the DATA bytes;
* ``ledger.Ledger``: in flight, unconfirmed, every verdict's accounting, latencies;
* ``requests.RequestTracker``: retries (``lab.core.retry``), confirmation timeouts, the
  breaker, recovery;
* ``ratelimit.make_limiter``: the producer's own limiter (``--limit``);
* ``concurrency.LimitGate``: with ``--limit-algorithm aimd|gradient``, at most ``limit``
  messages outstanding (sent, no final answer: processed confirmations are asked for, as
  with ``--timeout-ms``); the limit moves with the measured round trips;
* ``lag_reader.LagReader``: with ``--throttle-on-lag``, the rate follows the lag the
  consumer reports in every WELCOME, by Module 20's rule, never past the configured rate;
* ``producer_report``: the snapshot and the summary.

**Sessions.** A WELCOME with a new session id means the consumer restarted: whatever was in
flight, and in block mode whatever was accepted but not confirmed processed, is sent again.
Resends are not new *produced* messages.

Rules: no sockets, no sleeping, no clock reads; times are this producer's monotonic
seconds, converted to epoch seconds only when written into a frame.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from lab.core import producer_report, protocol
from lab.core.accounting import ProducerCounts
from lab.core.concurrency import LimitGate, make_limit
from lab.core.config import ProducerConfig
from lab.core.demand import Demand
from lab.core.framing import Framer, OutFrame
from lab.core.lag_reader import LAG_READ_S, LagReader
from lab.core.ledger import Ledger
from lab.core.link import ConsumerLink
from lab.core.making import MessageMaker
from lab.core.metrics import RecentLatency
from lab.core.outbox import Entry, Outbox
from lab.core.ratelimit import make_limiter
from lab.core.requests import RequestTracker
from lab.core.retry import RETRY_POLICIES as RETRY_POLICIES  # re-exported for the CLI

MAX_CONTROL_RATE = 1e9  # msg/s: a CONTROL asking for more is malformed (pacing cannot do it)
EVENT_LOG_LENGTH = 6


class ProducerCore:
    """A producer's state machine. See the module docstring."""

    def __init__(self, config: ProducerConfig, now: float) -> None:
        self.config = config
        self.name = config.name or "producer"  # the shell names it after its pid
        self.started_at = now
        self.stopped_at: Optional[float] = None
        rng = random.Random(config.seed)  # priority classes and retry jitter, in turn
        self.maker = MessageMaker(config, rng, now)
        spike_planned = None
        if self.maker.schedule is not None and config.profile == "spike":
            spike_planned = (now + config.spike_at, now + config.spike_at + config.spike_duration)
        self.throttle = LagReader.for_config(config)
        heartbeat_s = config.heartbeat_s if self.throttle is None else LAG_READ_S
        verdict_latency = RecentLatency()
        self.requests = RequestTracker(config, rng, now, verdict_latency, spike_planned)
        self.ledger = Ledger(self.requests, len(config.priority_mix), verdict_latency)
        algorithm = make_limit(config.limit_algorithm, config.limit_timeout_s)
        self.gate = None if algorithm is None else LimitGate(algorithm, now)
        self.ledger.gate = self.gate
        self.ledger.keep_accepted = self._keeps_accepted(None)
        self.link = ConsumerLink(
            self.name,
            config.extra.get("pid", 0),
            self.requests.wants_confirm or self.gate is not None,
            min(heartbeat_s, config.heartbeat_s),
            config.consumer_timeout_s,
            now,
        )
        self.outbox = Outbox(config.max_pending, config.batch_max)
        self.demand: Optional[Demand] = None  # pull mode: what the consumer requested
        self.framer = Framer(config, self.maker.unpaced)
        self.limiter = config.limiter_plugin or make_limiter(
            config.limiter, config.limiter_rate, config.limiter_burst, now
        )
        self.malformed = 0
        self.refused_by_consumer = ""  # an error WELCOME's text: the versions do not match
        self.events: Deque[Tuple[float, str]] = deque(maxlen=EVENT_LOG_LENGTH)
        self.log(now, f"{self.name} starting at {self.target_rate(now):g} msg/s")

    # -- what the shells and tests read -----------------------------------------------------------
    @property
    def counts(self) -> ProducerCounts:
        return self.ledger.counts

    @property
    def in_flight(self) -> Dict[int, Entry]:
        return self.ledger.in_flight

    @property
    def credit_limit(self) -> Optional[int]:
        return self.link.credit_limit

    @property
    def consumer_up(self) -> bool:
        return self.link.up

    @property
    def last_heard(self) -> float:
        return self.link.last_heard

    @property
    def sessions_seen(self) -> int:
        return self.link.sessions_seen

    @property
    def consumer_mode(self) -> Optional[str]:
        return self.link.mode

    @property
    def window(self) -> Optional[int]:
        """The consumer's window from its WELCOME (None before one)."""
        return self.link.window

    @property
    def wants_confirm(self) -> bool:
        """True when this producer waits for "processed" (a request timeout is set)."""
        return self.requests.wants_confirm

    @property
    def skipped(self) -> int:
        return self.maker.skipped

    # -- time passing -------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Heartbeat, notice a silent consumer, release due retries, make due messages."""
        if self.link.tick(now):
            self.log(
                now, f"consumer down: no answer for {self.config.consumer_timeout_s:g} s; retrying"
            )
        released = self.requests.due_retries(now)
        if released:
            self.outbox.put_back(released)
        self._expire_timeouts(now)
        self.requests.track_recovery(now)
        if self.stopped_at is None:
            self._generate(now)

    def on_disconnect(self, now: float) -> None:
        """The shell saw the connection close (the consumer process died, most likely): the
        consumer is down now, without waiting ``consumer_timeout_s``. Knock at once, and on
        every reconnect; a WELCOME with a new session brings the resend (``_on_welcome``)."""
        if self.link.disconnected(now):
            self.log(now, "consumer down: connection lost; retrying")

    def drained(self) -> bool:
        """Nothing waits for a verdict, a processed confirmation or a resend: safe to leave."""
        return (
            not self.ledger.in_flight
            and not self.ledger.unconfirmed
            and not (self.outbox.has_resends())
        )

    def next_deadline(self, now: float) -> float:
        """The latest time the shell may wait before calling ``advance`` again.

        ``now`` if the outbox holds messages that may go (unless the socket refused the last
        frame: then the shell waits for it to become writable). While the outbox is full
        nothing new is made, so the schedule sets no deadline: the missed slots are
        skipped when the producer is unblocked, and a blocked producer does not spin.
        """
        sendable = 0 if self.framer.socket_full else self.sendable()
        if self._may_send(now, sendable):
            return now
        deadline = self.link.next_hello
        next_frame_at = self.framer.next_at
        if sendable and next_frame_at > now:
            deadline = min(deadline, next_frame_at)  # a partial frame waits its turn
        next_due = self.maker.next_due(now)
        waiting = len(self.outbox)
        if self.stopped_at is None and waiting < self.outbox_limit():
            if self.maker.unpaced:
                deadline = now
            elif next_due is not None:
                # what comes due before the next frame may go is made when it goes
                deadline = min(deadline, max(next_due, next_frame_at))
        requests_deadline = self.requests.next_deadline()
        if requests_deadline is not None:
            deadline = min(deadline, requests_deadline)
        if self.limiter is not None and waiting and self.link.up:
            deadline = min(deadline, now + self.limiter.time_until(now))
        return max(deadline, now)

    def stop(self, now: float) -> None:
        """Stop making messages; what is in flight may still get its verdict."""
        if self.stopped_at is None:
            self.stopped_at = now
            self.log(now, "stopping")

    def take_control_frames(self) -> List[bytes]:
        return self.link.take_control_frames()

    def bye_frame(self) -> bytes:
        return protocol.encode_json(protocol.BYE, {"producer": self.name})

    # -- sending ------------------------------------------------------------------------------
    def sendable(self) -> int:
        """How many outbox messages may go now (handshake done, credit allows, not stopped:
        a stopped producer only waits for verdicts; what never left stays ``pending``).

        Stopped, it still resends what a killed consumer had accepted (``_on_welcome``):
        those were taken from us once, and holding them back would lose them."""
        waiting = len(self.outbox)
        if not self.link.up or not waiting:
            return 0
        n = waiting if self.stopped_at is None else self.outbox.resends()
        if self.gate is not None:
            n = min(n, self.gate.room(self.ledger.outstanding()))
        if self.demand is not None:
            n = min(n, self.demand.outstanding)
        return max(0, min(self.link.credit_room(n), self.framer.records))

    def ready(self, now: float) -> bool:
        """Something may go at ``now``: ``sendable``, and the rate limiter has a token (a
        producer waiting for its limiter sleeps until the next token, it does not spin)."""
        return self._may_send(now, self.sendable())

    def _may_send(self, now: float, sendable: int) -> bool:
        return (
            sendable > 0
            and self.framer.may_go(now, sendable)
            and (self.limiter is None or self.limiter.time_until(now) <= 0)
        )

    def pull_frame(self, now: float) -> Optional[OutFrame]:
        n = self.sendable()
        if n > 0 and not self.framer.may_go(now, n):
            return None
        if n > 0 and self.limiter is not None:
            n = self.limiter.take_up_to(now, n)
        if n <= 0:
            return None
        # a stopped producer only resends what a restarted consumer may have lost
        taken = self.outbox.take(n) if self.stopped_at is None else self.outbox.take_resends(n)
        entries = self.requests.admit(taken, now)
        if not entries:
            return None
        return self.framer.encode(entries, now, self.link.sent_total)

    def mark_sent(self, frame: OutFrame, now: float) -> None:
        self.ledger.sent(frame.entries, now, limited=self.limiter is not None)
        self.link.sent_total += len(frame.entries)
        if self.demand is not None:
            self.demand.take(len(frame.entries))
        self.framer.sent(now, len(frame.entries))
        if self.gate is not None:
            self.gate.observe(now, self.ledger.outstanding(), sending=True)

    def mark_unsent(self, frame: OutFrame) -> None:
        self.outbox.put_back(frame.entries)
        self.framer.refused()

    # -- receiving ----------------------------------------------------------------------------
    def on_frame(self, frame: bytes, now: float) -> None:
        error = protocol.welcome_error(frame)
        if error:  # the consumer cannot talk to us: nothing will ever be accepted
            self.refused_by_consumer = error
            self.log(now, f"consumer refused: {error}")
            return
        try:
            kind = protocol.frame_type(frame)
            if kind == protocol.VERDICTS:
                verdicts = protocol.decode_verdicts(frame)
            elif kind in (protocol.WELCOME, protocol.CONTROL):
                info = protocol.decode_json(frame)
            elif kind == protocol.REQUEST:
                wanted = protocol.decode_request(frame)
            else:
                raise protocol.ProtocolError(f"{protocol.FRAME_NAMES[kind]} is not for producers")
        except protocol.ProtocolError:
            self.malformed += 1
            return
        if self.link.heard(now):
            self.log(now, "consumer up")
        if kind == protocol.VERDICTS:
            self._on_verdicts(verdicts, now)
        elif kind == protocol.WELCOME:
            self._on_welcome(info, now)
        elif kind == protocol.REQUEST:  # pull mode: demand adds up (Reactive Streams 3.8)
            self.demand = self.demand or Demand()
            self.demand.request(wanted)
        else:
            self._on_control(info, now)

    # -- live control -------------------------------------------------------------------------
    def set_rate(self, rate: float, now: float) -> None:
        self.maker.set_rate(rate, now)
        if self.throttle is not None:
            self.throttle.set_ceiling(rate)
        self.log(now, f"rate set to {rate:g} msg/s")

    def start_spike(self, now: float, factor: float, duration: float) -> None:
        self.maker.start_spike(now, factor, duration)
        self.requests.spike(now, now + duration)
        self.log(now, f"spike: x{factor:g} for {duration:g} s")

    # -- reports ------------------------------------------------------------------------------
    def target_rate(self, now: float) -> float:
        return self.maker.rate_at(now)

    def log(self, now: float, text: str) -> None:
        self.events.append((now, text))

    def outbox_limit(self) -> int:
        return self.outbox.limit(self.link.credit_limit, self.link.window)

    def lost(self) -> int:
        """Messages no living consumer holds and that will not be sent again."""
        lost = self.outbox.resends()
        if not self.link.up:
            lost += len(self.ledger.in_flight) + len(self.ledger.unconfirmed)
        return lost

    def snapshot(self, now: float, rss_mb: float = 0.0, cpu_pct: float = 0.0) -> Dict[str, Any]:
        return producer_report.snapshot(self, now, rss_mb, cpu_pct)

    def summary(self, now: float) -> Dict[str, Any]:
        return producer_report.summary(self, now)

    # -- internals ----------------------------------------------------------------------------
    def _generate(self, now: float) -> None:
        waiting = len(self.outbox)
        first, dues, entries = self.maker.make(now, waiting, self.outbox_limit() - waiting)
        if not entries:  # most turns of a busy producer: nothing came due since the last
            return
        self.outbox.add(entries)
        self.requests.opened(first, dues)

    def _on_welcome(self, info: Dict[str, Any], now: float) -> None:
        try:
            restarted, limit = self.link.welcome(info)
        except protocol.ProtocolError:
            self.malformed += 1
            return
        if restarted:
            self.log(now, "consumer restarted: resending what it had not confirmed")
            self.outbox.put_back(self.ledger.take_back_all())
            self._observe_outstanding(now)
        self._set_credit(limit)
        if info.get("pull") is not True:
            self.demand = None
        elif restarted or self.demand is None:  # a new consumer: no demand carried over
            self.demand = Demand()
        if self.throttle is not None:
            self._follow_lag(info, now)

    def _follow_lag(self, info: Dict[str, Any], now: float) -> None:
        assert self.throttle is not None
        try:
            text = self.throttle.read(info, now)
        except protocol.ProtocolError:
            self.malformed += 1
            return
        rate = self.throttle.rate
        if rate != self.maker.rate_at(now):
            self.maker.set_rate(rate, now)
        if text:
            self.log(now, text)

    def _keeps_accepted(self, credit_limit: Optional[int]) -> bool:
        """Accepted messages wait for "processed": in block mode, when a confirmation
        timeout is set, and under a concurrency limit (they are outstanding until then)."""
        return credit_limit is not None or self.requests.wants_confirm or self.gate is not None

    def _observe_outstanding(self, now: float) -> None:
        if self.gate is not None:
            self.gate.observe(now, self.ledger.outstanding())

    def _set_credit(self, limit: Optional[int]) -> None:
        wants_confirm = self.requests.wants_confirm or self.gate is not None
        if limit is None and self.link.credit_limit is not None and not wants_confirm:
            self.ledger.unconfirmed.clear()  # no more processed confirmations will come
        if limit is not None and self.link.credit_limit is None and not wants_confirm:
            # Switched into block mode: what was accepted before was not kept for a
            # confirmation, so a "processed" for it is expected, not a duplicate.
            self.ledger.untracked_below = self.maker.next_seq
        self.link.credit_limit = limit
        self.ledger.keep_accepted = self._keeps_accepted(limit)

    def _on_verdicts(self, verdicts: protocol.Verdicts, now: float) -> None:
        made = self.maker.next_seq
        if any(run.first_seq + run.count > made for run in verdicts.runs):
            self.malformed += 1  # verdicts for messages never made: ignore the whole frame
            return
        limit = verdicts.credit_limit
        self._set_credit(None if limit == protocol.NO_CREDIT_LIMIT else limit)
        for kind, first, count, retry_after_ms in verdicts.runs:
            self.ledger.apply(kind, first, count, retry_after_ms, now)
        self._observe_outstanding(now)

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
            self.link.ask_delay(info.get("link_delay_ms"))  # for the shell's delay line
        except (TypeError, ValueError, OverflowError):
            self.malformed += 1

    def _expire_timeouts(self, now: float) -> None:
        """Accepted messages with no "processed" in time: the caller gives up and retries,
        under a new seq (the old one may still be processed: a late completion)."""
        while True:
            entry = self.requests.next_timed_out(now, self.ledger.unconfirmed)
            if entry is None:
                self._observe_outstanding(now)
                return
            if self.gate is not None:
                self.gate.loss(now, entry.sent_at)
            self.requests.retry_or_give_up(self.maker.renumbered(entry), 0, now)
