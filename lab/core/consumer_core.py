"""The consumer, without I/O: frames in, frames out, counters and snapshots.

Theory of operation
-------------------
:class:`ConsumerCore` is the whole consumer except its sockets (h11's idea). The shell in
``consumer.py`` feeds it what arrives (``on_frame(peer, frame, now)``), lets time pass
(``advance(now)``), and sends what it hands back (``take_outgoing()``). Everything else
lives here:

* each DATA record is judged by the overflow policy (``policies.py``) and the verdict is
  carried out on the buffer (``buffer.py``);
* the worker (``service.py``) completes messages in exact simulated time;
* in block mode, room is handed to producers as *credit*: a cumulative number of records
  each producer may have sent, so a lost or repeated VERDICTS frame can never create or
  destroy credit. Credit is split fairly among producers heard from recently, and taken
  back from a producer that goes silent for ``producer_timeout_s`` or says BYE;
* every decision is counted per producer (``accounting.py``) and summed for snapshots.

Rules: nothing here sleeps, reads a clock or touches a socket; malformed input increments
``malformed`` and changes nothing else.
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from lab.core import protocol
from lab.core.accounting import MAX_CLASSES, ClassCounts, ConsumerCounts, sum_consumer_counts
from lab.core.buffer import UNBOUNDED_FREE_SLOTS, Buffer, Message
from lab.core.config import ConsumerConfig
from lab.core.metrics import RateWindow, RecentLatency, TimeWeightedMean
from lab.core.modes import build_policy
from lab.core.policies import (
    ACCEPT,
    ACCEPT_EVICTING_OLDEST,
    DROP,
    MEASURED_RATE_WINDOW_S,
    SAMPLE_OUT,
    SHED,
    LoadSignals,
    OverflowPolicy,
)
from lab.core.workers import build_worker

MAX_PRODUCERS = 256  # more than this and the quietest finished ones are folded into one row
EVENT_LOG_LENGTH = 6


class ProducerState:
    """What the consumer knows about one connected producer."""

    __slots__ = (
        "peer",
        "name",
        "pid",
        "counts",
        "last_seen",
        "active",
        "credit_limit",
        "received_ordinal",
        "runs",
        "confirmations",
        "credit_dirty",
        "last_processed_seq",
        "out_of_order",
        "rate_in",
        "next_ordinal",
        "wants_confirm",
    )

    def __init__(self, peer: bytes, now: float) -> None:
        self.peer = peer
        self.name = _printable(peer)
        self.pid = 0
        self.counts = ConsumerCounts()
        self.last_seen = now
        self.active = True
        self.credit_limit = 0
        self.received_ordinal = 0  # the producer's record ordinal we have reached
        self.runs = protocol.RunBuilder()  # verdicts on arrival (and evictions)
        self.confirmations = protocol.RunBuilder()  # processed, block mode only
        self.credit_dirty = False
        self.last_processed_seq = -1
        self.out_of_order = 0
        self.rate_in = RateWindow()
        self.next_ordinal = 0
        self.wants_confirm = False  # asked in HELLO: "processed" confirmations in every mode

    @property
    def outstanding_credit(self) -> int:
        return max(0, self.credit_limit - self.received_ordinal)


class ConsumerCore:
    """A consumer's state machine. See the module docstring."""

    def __init__(self, config: ConsumerConfig, now: float, session: str = "consumer"):
        self.config = config
        # Producers tell a restarted consumer by a new session id, so the shell hands in a
        # fresh one per process (the core draws no randomness of its own).
        self.session = session
        self.started_at = now
        rng = random.Random(config.seed)
        self.service, self.worker = build_worker(config, rng, now)
        self.policy: OverflowPolicy = build_policy(config.mode, **config.policy_options())
        self.mode = config.mode
        self.buffer = Buffer(
            None if config.mode == "unbounded" else config.capacity,
            config.discipline or self.policy.discipline,
        )
        self.producers: Dict[bytes, ProducerState] = {}
        self.retired = ConsumerCounts()  # producers folded away to bound memory
        self.malformed = 0
        self.malformed_reasons: Dict[str, int] = {}
        self.max_depth = 0
        self.stopped_by: Optional[str] = None
        self.events: Deque[Tuple[float, str]] = deque(maxlen=EVENT_LOG_LENGTH)
        self._outgoing: List[Tuple[bytes, bytes]] = []
        self._rates = {name: RateWindow() for name in _RATE_NAMES}
        self.queue_wait_recent = RecentLatency()
        self.service_seconds = 0.0  # summed service times of finished messages (Little's W)
        self.classes = ClassCounts()
        self.class_wait = [RecentLatency() for _ in range(MAX_CLASSES)]
        self._class_list_of = {d: getattr(self.classes, f) for d, f in _DECISION_FIELD.items()}
        self.depth_mean = TimeWeightedMean(now)
        self.wait_target_s = config.wait_target_s
        self.waited_past_target = 0
        self._late_by_accept: Dict[int, int] = {}  # tenth of a second accepted -> count
        self._next_expiry_check = now
        self.log(now, f"consumer up: mode {self.mode}, buffer {self._capacity_text()}")

    # -- input -------------------------------------------------------------------------------
    def on_frame(self, peer: bytes, frame: bytes, now: float) -> None:
        """Handle one frame from a producer; malformed frames are counted and ignored."""
        try:
            kind = protocol.frame_type(frame)
            if kind == protocol.DATA:
                first_ordinal, records = protocol.decode_data_frame(frame)
            elif kind in (protocol.HELLO, protocol.BYE):
                info = protocol.decode_json(frame)
                sent = info.get("sent", 0) if kind == protocol.HELLO else 0
                if not isinstance(sent, int) or not 0 <= sent < protocol.MAX_ORDINAL:
                    raise protocol.ProtocolError("HELLO 'sent' must be an integer in [0, 2**63)")
            else:
                raise protocol.ProtocolError(
                    f"{protocol.FRAME_NAMES[kind]} is not sent by producers"
                )
        except protocol.ProtocolError as error:
            self._count_malformed(str(error))
            return
        if kind == protocol.DATA:
            state = self._producer(peer, now, first_ordinal)
            self._on_data(state, records, first_ordinal, now)
            return
        ordinal = info.get("sent", 0) if kind == protocol.HELLO else 0
        state = self._producer(peer, now, ordinal)
        if kind == protocol.HELLO:
            if ordinal < state.received_ordinal:
                self._restart_producer(state, ordinal, now)
            self._on_hello(state, info, now)
        else:
            self._on_bye(state, now)

    def count_malformed(self, reason: str) -> None:
        """For the shell: a message that never became a frame (wrong number of parts)."""
        self._count_malformed(reason)

    def advance(self, now: float) -> None:
        """Let time pass: finish services, expire silent producers, hand out credit."""
        self._run_worker(now)
        if now >= self._next_expiry_check:
            self._expire_producers(now)
            self._next_expiry_check = now + 0.1
        if self.policy.uses_credit:
            self._grant_credit()

    def take_outgoing(self) -> List[Tuple[bytes, bytes]]:
        """Frames to send, as (peer, frame): verdict runs and credit, batched per producer."""
        self._frame_pending_runs()
        out, self._outgoing = self._outgoing, []
        return out

    def _frame_pending_runs(self) -> None:
        """Put every producer's pending runs into VERDICTS frames under the current policy's
        credit limit. A frame's runs all happened under the mode its limit announces."""
        uses_credit = self.policy.uses_credit
        for state in self.producers.values():
            if state.runs or state.confirmations or state.credit_dirty:
                limit = state.credit_limit if uses_credit else protocol.NO_CREDIT_LIMIT
                # Verdicts before confirmations: a message is accepted before it is processed.
                runs = state.runs.take() + state.confirmations.take()
                step = protocol.MAX_RUNS_PER_FRAME
                for start in range(0, max(len(runs), 1), step):
                    frame = protocol.encode_verdicts(limit, runs[start : start + step])
                    self._outgoing.append((state.peer, frame))
                state.credit_dirty = False

    def next_deadline(self, now: float) -> float:
        """The latest time the shell may wait before calling ``advance`` again."""
        deadline = self._next_expiry_check
        worker_event = self.worker.next_event()
        if worker_event is not None:
            deadline = min(deadline, worker_event)
        return max(deadline, now)

    # -- control ------------------------------------------------------------------------------
    def set_mode(self, mode: str, now: float) -> None:
        """Switch the overflow policy live; every counter carries on unchanged."""
        policy = build_policy(mode, **self.config.policy_options())
        # What is owed under the old mode goes out under its limit: a PROCESSED confirmation
        # framed after leaving block mode would reach a producer that has stopped waiting.
        self._frame_pending_runs()
        was_credit = self.policy.uses_credit
        self.policy, self.mode = policy, mode
        self.buffer.capacity = None if mode == "unbounded" else self.config.capacity
        self.buffer.set_discipline(self.config.discipline or policy.discipline)
        for state in self.producers.values():
            if policy.uses_credit and not was_credit:
                state.credit_limit = state.received_ordinal
            state.credit_dirty = True
        if policy.uses_credit:
            self._grant_credit()
        self.log(now, f"mode switched to {mode}")

    def set_policy(self, policy: OverflowPolicy, now: float) -> None:
        """Install a custom policy object (the exercises' entry point)."""
        self._frame_pending_runs()
        self.policy, self.mode = policy, policy.name
        self.buffer.set_discipline(policy.discipline)
        self.log(now, f"policy {policy.name} installed")

    def observe(self, now: float, rss_mb: float) -> Optional[str]:
        """Feed the measured load to the policy; returns a stop reason if memory ran out."""
        self.policy.observe(self.load_signals(now, rss_mb), now)
        if rss_mb > self.config.max_memory_mb and self.stopped_by is None:
            self.stopped_by = "memory_guard"
            self.log(
                now,
                f"memory guard: RSS {rss_mb:.1f} MB > {self.config.max_memory_mb:g} MB"
                " -- this is where a real service would be OOM-killed",
            )
            return self.stopped_by
        return None

    def load_signals(self, now: float, rss_mb: float) -> LoadSignals:
        # (time, processed, service seconds) marks of the last MEASURED_RATE_WINDOW_S: the
        # worker's measured speed is what it finished over the service time that took.
        marks = self.__dict__.setdefault("_speed_marks", deque())  # set up on first use
        marks.append((now, self.totals().processed, self.service_seconds))
        while len(marks) > 2 and marks[1][0] <= now - MEASURED_RATE_WINDOW_S:
            marks.popleft()
        done, busy = marks[-1][1] - marks[0][1], marks[-1][2] - marks[0][2]
        last = self.__dict__.get("_measured_rate", self.config.process_rate)
        self._measured_rate = done / busy if done > 0 and busy > 0 else last
        return LoadSignals(
            measured_rate_per_s=self._measured_rate,
            arrival_per_s=self._rates["received"].rate(now),
            processed_per_s=self._rates["processed"].rate(now),
            service_rate_per_s=self.service.effective_rate,
            depth=self.buffer.depth,
            capacity=self.buffer.capacity,
            oldest_age_s=self.buffer.oldest_age(now),
            queue_wait_p99_s=self.queue_wait_recent.merged(now).percentile(99),
            rss_mb=rss_mb,
        )

    def log(self, now: float, text: str) -> None:
        self.events.append((now, text))

    # -- reports ------------------------------------------------------------------------------
    def totals(self) -> ConsumerCounts:
        return sum_consumer_counts([self.retired] + [s.counts for s in self.producers.values()])

    def identity_errors(self) -> List[str]:
        """Broken accounting identities (empty when all is well), checked against the buffer."""
        totals = self.totals()
        errors = totals.identity_errors()
        if totals.depth != self.buffer.depth:
            errors.append(f"counted depth {totals.depth} != buffer depth {self.buffer.depth}")
        for state in self.producers.values():
            errors.extend(f"{state.name}: {e}" for e in state.counts.identity_errors())
        return errors

    def snapshot(self, now: float, rss_mb: float = 0.0, cpu_pct: float = 0.0) -> Dict[str, Any]:
        """Everything a dashboard shows, as plain JSON-able data."""
        totals = self.totals()
        wait = self.queue_wait_recent.summary(now)
        return {
            "v": 1,
            "role": "consumer",
            "session": self.session,
            "module": self.config.module,
            "mode": self.mode,
            "uptime_s": round(now - self.started_at, 3),
            "depth": self.buffer.depth,
            "capacity": self.buffer.capacity,
            "limit": _finite(self.policy.admission_limit(self.buffer)),
            "max_depth": self.max_depth,
            "oldest_age_s": self.buffer.oldest_age(now),
            "waiting_by_class": self.buffer.waiting_by_class(),
            "rates": {name: rate.rate(now) for name, rate in self._rates.items()},
            "totals": totals.as_dict(),
            "malformed": self.malformed,
            "queue_wait": {
                "p50_s": wait["p50"],
                "p99_s": wait["p99"],
                "max_s": wait["max"],
            },
            "classes": self._class_rows(now),
            "policy_state": self.policy.status(),
            "service_rate": _finite(self.service.effective_rate),
            "slowdown": self.service.slowdown,
            "worker": self.worker.status(now),
            "worker_groups": self.worker.groups_status(now),
            "producers": [self._producer_row(s, now) for s in self.producers.values()],
            "credit_outstanding": sum(
                s.outstanding_credit for s in self.producers.values() if s.active
            )
            if self.policy.uses_credit
            else None,
            "rss_mb": rss_mb,
            "max_memory_mb": self.config.max_memory_mb,
            "cpu_pct": cpu_pct,
            "stopped_by": self.stopped_by,
            "events": [[round(t - self.started_at, 2), text] for t, text in self.events],
            "identity_ok": not self.identity_errors(),
        }

    def summary(self, now: float) -> Dict[str, Any]:
        """The ``--json`` object printed when the consumer stops."""
        totals = self.totals()
        elapsed = now - self.started_at
        wait = self.queue_wait_recent.total()
        return {
            "role": "consumer",
            "module": self.config.module,
            "mode": self.mode,
            "duration_s": round(elapsed, 3),
            **{k: v for k, v in totals.as_dict().items()},
            "malformed": self.malformed,
            "capacity": self.buffer.capacity,
            "max_depth": self.max_depth,
            "mean_depth": self.depth_mean.value(now),
            "process_rate": _finite(self.service.rate),
            "worker": self.worker.summary(),
            "processed_mps": totals.processed / elapsed if elapsed > 0 else 0.0,
            "queue_wait_p50_ms": wait.percentile(50) * 1e3,
            "queue_wait_p99_ms": wait.percentile(99) * 1e3,
            "queue_wait_mean_ms": wait.mean * 1e3,
            "queue_wait_max_ms": wait.max * 1e3,
            # W of Little's law for mean_depth (which counts the message in service too)
            "service_mean_ms": self.service_seconds / wait.count * 1e3 if wait.count else 0.0,
            "time_in_system_mean_ms": (wait.sum + self.service_seconds) / wait.count * 1e3
            if wait.count
            else 0.0,
            "out_of_order": sum(s.out_of_order for s in self.producers.values()),
            "wait_target_ms": None if self.wait_target_s is None else self.wait_target_s * 1e3,
            "waited_past_target": self.waited_past_target,
            "waited_past_target_accepted_at": [
                [key / 10, count] for key, count in sorted(self._late_by_accept.items())
            ],
            "classes": [
                {**row, "wait_p99_ms": self.class_wait[row["class"]].total().percentile(99) * 1e3}
                for row in self.classes.rows()
            ],
            "producers": _by_unique_name(self.producers.values()),
            "stopped_by": self.stopped_by,
            "identity_errors": self.identity_errors(),
        }

    # -- internals ----------------------------------------------------------------------------
    def _producer(self, peer: bytes, now: float, ordinal: int = 0) -> ProducerState:
        state = self.producers.get(peer)
        if state is None:
            if len(self.producers) >= MAX_PRODUCERS:
                self._retire_one()
            state = self.producers[peer] = ProducerState(peer, now)
            # Credit is counted in the producer's own record ordinals, which survive our
            # restarts and mode switches: start where the producer is.
            state.received_ordinal = state.credit_limit = max(0, ordinal)
            if self.policy.uses_credit:
                state.credit_dirty = True
        elif not state.active:
            state.active = True
            state.credit_dirty = True  # its credit was taken back: tell it the new limit
            self.log(now, f"producer {state.name} is back")
        state.last_seen = now
        return state

    def _restart_producer(self, state: ProducerState, ordinal: int, now: float) -> None:
        """The same name came back with a smaller ordinal: a new process under an old name.
        Its counts carry on; its credit and sequence tracking start again from its ordinal."""
        state.received_ordinal = state.credit_limit = ordinal
        state.last_processed_seq = -1
        state.credit_dirty = True
        self.log(now, f"producer {state.name} restarted")

    def _on_hello(self, state: ProducerState, info: Dict[str, Any], now: float) -> None:
        name = info.get("producer")
        if isinstance(name, str) and name and state.name != name[:64]:
            state.name = name[:64]
            self.log(now, f"producer {state.name} joined")
        pid = info.get("pid")
        if isinstance(pid, int):
            state.pid = pid
        state.wants_confirm = info.get("confirm") is True
        if self.policy.uses_credit:
            self._grant_credit()
        welcome = {
            "session": self.session,
            "module": self.config.module,
            "mode": self.mode,
            "capacity": self.buffer.capacity,
            "window": _finite(self.policy.admission_limit(self.buffer)),
            "credit_limit": state.credit_limit if self.policy.uses_credit else None,
            "heartbeat_s": self.config.heartbeat_s,
            "timeout_s": self.config.producer_timeout_s,
            "protocol": protocol.VERSION,
        }
        self._outgoing.append((state.peer, protocol.encode_json(protocol.WELCOME, welcome)))

    def _on_bye(self, state: ProducerState, now: float) -> None:
        self._deactivate(state, now, "said goodbye")

    def _on_data(
        self, state: ProducerState, records: List[protocol.Record], first_ordinal: int, now: float
    ) -> None:
        """Judge a batch of records that arrived together at ``now``.

        Rates are stamped once per batch (every record of it arrived at ``now``), which keeps
        the per-record work to the decision itself: this is the lab's hot path.
        """
        self._run_worker(now)  # the rule of service.py: advance before pushing at `now`
        if self._finishes_instantly(state, first_ordinal + len(records)):
            self._accept_and_finish(state, records, first_ordinal, now)
            return
        tally = dict.fromkeys(_DECISIONS, 0)
        admit = self._admit
        if self.config.reject_cost > 0:
            admit = self._admit_charging
        state.next_ordinal = first_ordinal
        if math.isinf(self.service.rate):
            # Zero service time: each message is done before the next one is looked at.
            run_worker = self._run_worker
            for record in records:
                tally[admit(state, record, now)] += 1
                run_worker(now)
        else:
            buffer = self.buffer
            for record in records:
                tally[admit(state, record, now)] += 1
                if buffer.in_service is None:
                    # An idle worker takes what just arrived before the next record is
                    # judged (service.py's rule), so drop-oldest cannot evict it.
                    self._run_worker(now)
            self._run_worker(now)
        count = len(records)
        if first_ordinal + count > state.received_ordinal:
            state.received_ordinal = first_ordinal + count
        state.rate_in.add(now, count)
        rates = self._rates
        rates["received"].add(now, count)
        rates["accepted"].add(now, tally[ACCEPT] + tally[ACCEPT_EVICTING_OLDEST])
        rates["dropped"].add(now, tally[DROP])
        rates["sampled_out"].add(now, tally[SAMPLE_OUT])
        rates["shed"].add(now, tally[SHED])
        depth = self.buffer.depth
        if depth > self.max_depth:
            self.max_depth = depth
        self.depth_mean.update(now, depth)

    def _finishes_instantly(self, state: ProducerState, ordinal_end: int) -> bool:
        """Zero service time and an idle worker: every message is done as it arrives, so no
        policy can refuse it (nothing is ever waiting) unless credit is exceeded."""
        return (
            math.isinf(self.service.rate)
            and self.buffer.depth == 0
            and self.worker.stalled_until <= self.worker.free_at
            and (not self.policy.uses_credit or ordinal_end <= state.credit_limit)
        )

    def _accept_and_finish(
        self, state: ProducerState, records: List[protocol.Record], first_ordinal: int, now: float
    ) -> None:
        """The zero-service-time path: accepted, served and finished at ``now``, in order."""
        count = len(records)
        counts = state.counts
        counts.received += count
        counts.accepted += count
        counts.processed += count
        accepted, confirmations = state.runs.add, state.confirmations.add
        confirm = self.policy.uses_credit or state.wants_confirm
        last = state.last_processed_seq
        per_class = [0] * MAX_CLASSES
        for record in records:
            seq = record.seq
            per_class[record.priority if record.priority < MAX_CLASSES else MAX_CLASSES - 1] += 1
            accepted(protocol.ACCEPTED, seq)
            if confirm:
                confirmations(protocol.PROCESSED, seq)
            if seq > last:
                last = seq
            elif record.attempt == 0:
                state.out_of_order += 1
        state.last_processed_seq = last
        classes = self.classes
        for cls, n in enumerate(per_class):
            if n:
                classes.received[cls] += n
                classes.accepted[cls] += n
                classes.processed[cls] += n
                self.class_wait[cls].record(now, 0.0, n)
        if first_ordinal + count > state.received_ordinal:
            state.received_ordinal = first_ordinal + count
        self.worker.free_at = now
        self.queue_wait_recent.record(now, 0.0, count)
        state.rate_in.add(now, count)
        for name in ("received", "accepted", "processed"):
            self._rates[name].add(now, count)
        self.max_depth = max(self.max_depth, 1)

    def _admit(self, state: ProducerState, record: protocol.Record, now: float) -> str:
        """Decide one record and carry the decision out; returns the decision."""
        counts = state.counts
        counts.received += 1
        seq = record.seq
        message = Message(
            state.peer,
            seq,
            record.due,
            record.sent,
            record.priority,
            record.attempt,
            record.payload,
            now,
        )
        if self.policy.uses_credit:
            decision = self._decide_with_credit(state, message, now)
        else:
            decision = self.policy.decide(message, self.buffer, now)
        cls = record.priority if record.priority < MAX_CLASSES else MAX_CLASSES - 1
        self.classes.received[cls] += 1
        self._class_list_of[decision][cls] += 1
        if decision == DROP:
            counts.dropped += 1
            state.runs.add(protocol.DROPPED, seq)
        elif decision == ACCEPT:
            self._push(state, message)
        elif decision == ACCEPT_EVICTING_OLDEST:
            victim = self.buffer.evict_oldest()
            if victim is not None:
                self._record_eviction(victim, now)
            self._push(state, message)
        elif decision == SAMPLE_OUT:
            counts.sampled_out += 1
            state.runs.add(protocol.SAMPLED_OUT, seq)
        elif decision == SHED:
            counts.shed += 1
            retry_ms = self.policy.retry_after_ms  # any policy's: keep it to what the wire holds
            state.runs.add(protocol.SHED, seq, min(max(0, int(retry_ms)), protocol.MAX_RETRY_MS))
        else:
            raise ValueError(f"policy {self.policy.name} returned {decision!r}")
        return decision

    def _admit_charging(self, state: ProducerState, record: protocol.Record, now: float) -> str:
        """``_admit``, and every refusal takes ``reject_cost`` of a service time from the
        worker: reading a request only to say no is not free."""
        decision = self._admit(state, record, now)
        if decision in (DROP, SAMPLE_OUT, SHED) and not math.isinf(self.service.rate):
            self.worker.charge(now, self.config.reject_cost / self.service.effective_rate)
        return decision

    def _decide_with_credit(self, state: ProducerState, message: Message, now: float) -> str:
        ordinal = state.next_ordinal
        state.next_ordinal = ordinal + 1
        if ordinal >= state.received_ordinal:
            state.received_ordinal = ordinal + 1
        if ordinal < state.credit_limit:
            return self.policy.decide(message, self.buffer, now)
        # Over credit: only room nobody was promised may be used.
        limit = self._admission_limit()
        unpromised = limit - self.buffer.depth - self._promised_credit()
        if unpromised > 0 and _footprint(state) < _capped_share(limit, limit, self._cap):
            return ACCEPT
        state.counts.over_credit += 1
        return DROP

    def _push(self, state: ProducerState, message: Message) -> None:
        self.buffer.push(message)
        counts = state.counts
        counts.accepted += 1
        counts.depth += 1
        state.runs.add(protocol.ACCEPTED, message.seq)

    def _record_eviction(self, victim: Message, now: float) -> None:
        owner = self.producers.get(victim.producer)
        counts = owner.counts if owner is not None else self.retired
        counts.accepted -= 1
        counts.depth -= 1
        counts.dropped += 1
        counts.evicted += 1
        cls = min(victim.priority, MAX_CLASSES - 1)
        self.classes.accepted[cls] -= 1
        self.classes.dropped[cls] += 1
        self._rates["dropped"].add(now)
        if owner is not None:
            owner.runs.add(protocol.EVICTED, victim.seq)

    def _run_worker(self, now: float) -> None:
        """Complete what the worker finished by ``now``; count, time and confirm each one."""
        finished = self.worker.advance(self.buffer, now)
        if not finished:
            return
        confirm = self.policy.uses_credit
        wait_target = math.inf if self.wait_target_s is None else self.wait_target_s
        depth_update = self.depth_mean.update
        producers = self.producers
        remaining = self.buffer.depth + len(finished)  # depth before the first completion
        stamp, stamped = finished[0][1], 0
        processed_rate = self._rates["processed"]
        owner = None
        class_processed = self.classes.processed
        service_seconds = 0.0
        waits: List[float] = []
        wait_classes: List[int] = []
        for message, finished_at in finished:
            wait = message.started_at - message.enqueued_at
            service_seconds += finished_at - message.started_at
            waits.append(wait)
            cls = message.priority if message.priority < MAX_CLASSES else MAX_CLASSES - 1
            wait_classes.append(cls)
            class_processed[cls] += 1
            if wait > wait_target:
                self._count_late(message)
            remaining -= 1
            depth_update(finished_at, remaining)
            if finished_at - stamp >= _RATE_STAMP_S:
                processed_rate.add(stamp, stamped)
                stamp, stamped = finished_at, 0
            stamped += 1
            if owner is None or owner.peer != message.producer:
                owner = producers.get(message.producer)
            if owner is None:
                self.retired.processed += 1
                self.retired.depth -= 1
                continue
            counts = owner.counts
            counts.processed += 1
            counts.depth -= 1
            seq = message.seq
            if seq <= owner.last_processed_seq:
                if message.attempt == 0:
                    owner.out_of_order += 1
            else:
                owner.last_processed_seq = seq
            if confirm or owner.wants_confirm:
                owner.confirmations.add(protocol.PROCESSED, seq)
        processed_rate.add(stamp, stamped)
        self.service_seconds += service_seconds
        self._record_waits(finished, waits, wait_classes)

    def _record_waits(
        self, finished: List[Tuple[Message, float]], waits: List[float], classes: List[int]
    ) -> None:
        """Queue waits into the recent histograms, stamped with the start of service (as
        ``record(message.started_at, wait)`` would). Starts are in order (one worker), so
        a batch that starts within one whole second goes in with one call per histogram."""
        first, last = finished[0][0].started_at, finished[-1][0].started_at
        if int(first // 1) != int(last // 1):
            for (message, _), wait, cls in zip(finished, waits, classes):
                self.queue_wait_recent.record(message.started_at, wait)
                self.class_wait[cls].record(message.started_at, wait)
            return
        self.queue_wait_recent.record_many(first, waits)
        if not any(classes):
            self.class_wait[0].record_many(first, waits)
        else:
            for wait, cls in zip(waits, classes):
                self.class_wait[cls].record(first, wait)

    def _admission_limit(self) -> int:
        return min(
            self.policy.admission_limit(self.buffer), self.buffer.free_slots() + self.buffer.depth
        )

    @property
    def _cap(self) -> Optional[float]:
        return self.config.per_producer_limit

    def _promised_credit(self) -> int:
        return sum(s.outstanding_credit for s in self.producers.values() if s.active)

    def _grant_credit(self) -> None:
        """Hand free, unpromised room to active producers, a fair share each.

        A producer's footprint is what it holds in the buffer plus the credit it has not
        used. Nobody's footprint may pass ``limit / producers``, and the smallest footprint
        is served first, so a slow producer is never starved by a fast one.
        """
        active = [s for s in self.producers.values() if s.active]
        if not active:
            return
        limit = self._admission_limit()
        free = limit - self.buffer.depth - self._promised_credit()
        if free <= 0:
            return
        share = max(1, math.ceil(limit / len(active)))
        share = _capped_share(share, limit, self._cap)
        for state in sorted(active, key=_footprint):
            grant = min(free, share - _footprint(state))
            if grant > 0:
                state.credit_limit = state.received_ordinal + state.outstanding_credit + grant
                state.credit_dirty = True
                free -= grant
            if free <= 0:
                break

    def _expire_producers(self, now: float) -> None:
        horizon = now - self.config.producer_timeout_s
        for state in self.producers.values():
            if state.active and state.last_seen < horizon:
                self._deactivate(state, now, f"silent for {self.config.producer_timeout_s:g} s")

    def _deactivate(self, state: ProducerState, now: float, why: str) -> None:
        if state.active:
            state.active = False
            self.log(now, f"producer {state.name} {why}; its credit is taken back")
        state.credit_limit = min(state.credit_limit, state.received_ordinal)
        if self.policy.uses_credit:
            self._grant_credit()

    def _retire_one(self) -> None:
        """Fold the longest-silent inactive producer with nothing in the buffer into ``retired``."""
        candidates = [s for s in self.producers.values() if not s.active and s.counts.depth == 0]
        if not candidates:
            candidates = [s for s in self.producers.values() if s.counts.depth == 0]
        if not candidates:
            return
        victim = min(candidates, key=lambda s: s.last_seen)
        self.retired = sum_consumer_counts([self.retired, victim.counts])
        del self.producers[victim.peer]

    def _count_late(self, message: Message) -> None:
        """A message waited longer than ``wait_target_s``: counted, and filed under the tenth
        of a second (since the start) in which it was accepted, so a grader can tell the
        messages accepted before a slowdown was visible from those accepted after."""
        self.waited_past_target += 1
        key = int((message.enqueued_at - self.started_at) * 10)
        self._late_by_accept[key] = self._late_by_accept.get(key, 0) + 1

    def _count_malformed(self, reason: str) -> None:
        self.malformed += 1
        if len(self.malformed_reasons) < 32 or reason in self.malformed_reasons:
            self.malformed_reasons[reason] = self.malformed_reasons.get(reason, 0) + 1

    def _class_rows(self, now: float) -> List[Dict[str, Any]]:
        rows = self.classes.rows()
        for row in rows:
            wait = self.class_wait[row["class"]].merged(now)
            row["wait_p99_s"] = wait.percentile(99)
        return rows

    def _producer_row(self, state: ProducerState, now: float) -> Dict[str, Any]:
        return {
            "name": state.name,
            "active": state.active,
            "in_per_s": state.rate_in.rate(now),
            "credit": state.outstanding_credit if self.policy.uses_credit else None,
            **state.counts.as_dict(),
        }

    def _capacity_text(self) -> str:
        return "unbounded" if self.buffer.capacity is None else str(self.buffer.capacity)


_RATE_NAMES = ("received", "accepted", "processed", "dropped", "sampled_out", "shed")
_DECISIONS = (ACCEPT, ACCEPT_EVICTING_OLDEST, DROP, SAMPLE_OUT, SHED)
_DECISION_FIELD = {
    ACCEPT: "accepted",
    ACCEPT_EVICTING_OLDEST: "accepted",
    DROP: "dropped",
    SAMPLE_OUT: "sampled_out",
    SHED: "shed",
}
_RATE_STAMP_S = 0.001  # completions closer than this share one stamp in the rate window


def _capped_share(share: int, limit: int, cap: Optional[float]) -> int:
    """Classroom mode's ``per_producer_limit``: no producer's footprint may pass this fraction
    of the admission limit, however few producers there are (one attendee at ``--mps max``
    cannot take the room's buffer while the others are still joining). At least 1."""
    if cap is None:
        return share
    return min(share, max(1, int(limit * cap)))


def _footprint(state: ProducerState) -> int:
    return state.counts.depth + state.outstanding_credit


def _finite(value: float) -> Optional[float]:
    """JSON-friendly: infinity, and the unbounded buffer's huge limit, become None."""
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return None
    return None if value >= UNBOUNDED_FREE_SLOTS else value


def _by_unique_name(states) -> Dict[str, Dict[str, int]]:
    """Counts per producer name; a name used twice gets a #2 suffix instead of overwriting."""
    out: Dict[str, Dict[str, int]] = {}
    for state in states:
        name, n = state.name, 1
        while name in out:
            n += 1
            name = f"{state.name}#{n}"
        out[name] = state.counts.as_dict()
    return out


def _printable(peer: bytes) -> str:
    text = peer.decode("ascii", "replace") if peer.isascii() else peer.hex()
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:64] or "anonymous"
