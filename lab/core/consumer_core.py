"""The consumer, without I/O: frames in, frames out, counters and snapshots.

Theory of operation
-------------------
:class:`ConsumerCore` is the whole consumer except its sockets (h11's idea). The shell in
``consumer.py`` feeds it what arrives (``on_frame(peer, frame, now)``), lets time pass
(``advance(now)``), and sends what it hands back (``take_outgoing()``). The core itself is
a facade: it reads frames, keeps the producer table (``peers.py``) and the event log, and
hands the work to its parts, which share one :class:`~lab.core.consumer_stats.ConsumerStats`:

* ``admission.py`` judges each DATA record by the overflow policy (``policies.py``) and
  carries the decision out on the buffer (``buffer.py``);
* ``completion.py`` counts, times and confirms what the worker (``service.py``) finished,
  in exact simulated time;
* ``credit.py`` is block mode's credit: cumulative per producer, in fair shares, taken back
  from a producer that goes silent for ``producer_timeout_s`` or says BYE;
* ``consumer_report.py`` builds the snapshot and the summary.

Rules: nothing here sleeps, reads a clock or touches a socket; malformed input increments
``malformed`` and changes nothing else.
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from lab.core import consumer_report, protocol
from lab.core.accounting import ConsumerCounts, sum_consumer_counts
from lab.core.admission import Admission
from lab.core.buffer import Buffer
from lab.core.completion import Completion
from lab.core.config import ConsumerConfig
from lab.core.consumer_stats import ConsumerStats
from lab.core.credit import CreditLedger
from lab.core.disciplines import FromFile, build_discipline
from lab.core.flow_knobs import window_after
from lab.core.metrics import round_up
from lab.core.modes import build_policy
from lab.core.peers import MAX_PRODUCERS, ProducerState, retire_one, verdict_frames
from lab.core.policies import LoadSignals, OverflowPolicy
from lab.core.pull import PullLedger
from lab.core.round_trip import RoundTripMeter
from lab.core.workers import build_worker

__all__ = ["MAX_PRODUCERS", "ConsumerCore", "ProducerState"]

EVENT_LOG_LENGTH = 6


class ConsumerCore:
    """A consumer's state machine. See the module docstring.

    ``fast_paths=False`` turns the two accounting shortcuts off (zero service time, whole
    batches of waits); tests use it to prove that they change nothing.
    """

    def __init__(
        self,
        config: ConsumerConfig,
        now: float,
        session: str = "consumer",
        fast_paths: bool = True,
    ):
        self.config = config
        # Producers tell a restarted consumer by a new session id, so the shell hands in a
        # fresh one per process (the core draws no randomness of its own).
        self.session = session
        self.started_at = now
        self.fast_paths = fast_paths
        rng = random.Random(config.seed)
        self.service, self.worker = build_worker(config, rng, now)
        policy = build_policy(config.mode, **config.policy_options())
        self.mode = config.mode
        self.buffer = Buffer(
            None if config.mode == "unbounded" else config.capacity,
            config.discipline or policy.discipline,
        )
        self.producers: Dict[bytes, ProducerState] = {}
        self.stats = ConsumerStats(now)
        self.credit = CreditLedger(self.producers, config.per_producer_limit)
        self.round_trip = RoundTripMeter()
        self.pull = PullLedger(self.producers, config.request_n)
        self.completion = Completion(
            self.worker,
            self.buffer,
            self.producers,
            self.stats,
            now,
            config.wait_target_s,
            fast_paths,
        )
        self.admission = Admission(
            policy,
            self.buffer,
            self.credit,
            self.completion,
            self.stats,
            self.service,
            config.reject_cost,
        )
        self.completion.confirm_all = policy.uses_credit
        self.malformed = 0
        self.malformed_reasons: Dict[str, int] = {}
        self.stopped_by: Optional[str] = None
        self.events: Deque[Tuple[float, str]] = deque(maxlen=EVENT_LOG_LENGTH)
        self._outgoing: List[Tuple[bytes, bytes]] = []
        self._next_expiry_check = now
        self.set_queue_discipline(config.queue_discipline, now, quiet=True)
        capacity = "unbounded" if self.buffer.capacity is None else str(self.buffer.capacity)
        self.log(now, f"consumer up: mode {self.mode}, buffer {capacity}")

    @property
    def policy(self) -> OverflowPolicy:
        return self.admission.policy

    @property
    def max_depth(self) -> int:
        return self.stats.max_depth

    # -- input -------------------------------------------------------------------------------
    def on_frame(self, peer: bytes, frame: bytes, now: float) -> None:
        """Handle one frame from a producer; malformed frames are counted and ignored."""
        try:
            kind = protocol.frame_type(frame)
            if kind == protocol.DATA:
                first_ordinal, records = protocol.decode_data_frame(frame)
            elif kind == protocol.HELLO or kind == protocol.BYE:
                info = protocol.decode_json(frame)
                sent = info.get("sent", 0) if kind == protocol.HELLO else 0
                if not isinstance(sent, int) or not 0 <= sent < protocol.MAX_ORDINAL:
                    raise protocol.ProtocolError("HELLO 'sent' must be an integer in [0, 2**63)")
            else:
                raise protocol.ProtocolError(f"{kind.name} is not sent by producers")
        except protocol.ProtocolError as error:
            self._count_malformed(str(error))
            old = protocol.old_hello_version(frame)
            if old:  # tell an old producer why nobody answers it, in words it can read
                self._outgoing.append((peer, protocol.version_error_welcome(old)))
            return
        if kind == protocol.DATA:
            self.admission.budget_s = protocol.data_deadline_ms(frame) / 1000.0
            self._on_data(self._producer(peer, now, first_ordinal), records, first_ordinal, now)
            return
        state = self._producer(peer, now, sent)
        if kind == protocol.HELLO:
            if sent < state.received_ordinal:
                self._restart_producer(state, sent, now)
            self._on_hello(state, info, now)
        else:
            self._deactivate(state, now, "said goodbye")

    def count_malformed(self, reason: str) -> None:
        """For the shell: a message that never became a frame (wrong number of parts)."""
        self._count_malformed(reason)

    def advance(self, now: float) -> None:
        """Let time pass: finish services, expire silent producers, hand out credit."""
        self.completion.run(now)
        if now >= self._next_expiry_check:
            self._expire_producers(now)
            self._next_expiry_check = now + 0.1
        self._fit_window()
        if self.policy.uses_credit:
            self._grant_credit(now)
        if self.policy.uses_demand:
            self._outgoing.extend(self.pull.frames(self.admission.limit()))

    def take_outgoing(self) -> List[Tuple[bytes, bytes]]:
        """Frames to send, as (peer, frame): verdict runs and credit, batched per producer."""
        self._frame_pending_runs()
        out, self._outgoing = self._outgoing, []
        return out

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
        self._install(policy, mode)
        if mode == "unbounded":
            self.buffer.capacity = None
        elif self.buffer.capacity is None:
            self.buffer.capacity = self.config.capacity
        self._fit_window()
        self.buffer.set_discipline(self.config.discipline or policy.discipline)
        if policy.uses_credit:
            self._grant_credit(now)
        self.log(now, f"mode switched to {mode}")

    def set_window(self, value: Any, now: float) -> str:
        """Module 18's knob: the buffer's capacity, which block mode's credit and pull mode's
        demand are handed out against. ``value`` is a number, ``double`` or ``half``
        (``flow_knobs.window_after``). A larger window is handed out at once; room already
        promised is never taken back, so a smaller one comes into force as that room is
        used (``_fit_window``). Returns what happened, in words."""
        if self.buffer.capacity is None:
            raise ValueError("the unbounded mode has no window")
        window = window_after(self.config.capacity, value, self.config.request_n)
        self.config.capacity = window
        self._fit_window()
        if self.policy.uses_credit:
            self._grant_credit(now)
        note = f"window set to {window}"
        self.log(now, note)
        return note

    def set_policy(self, policy: OverflowPolicy, now: float) -> None:
        """Install a custom policy object (the exercises' entry point)."""
        self._install(policy, policy.name)
        self.buffer.set_discipline(policy.discipline)
        self.log(now, f"policy {policy.name} installed")

    def _install(self, policy: OverflowPolicy, mode: str) -> None:
        # What is owed under the old mode goes out under its limit: a PROCESSED confirmation
        # framed after leaving block mode would reach a producer that has stopped waiting.
        self._frame_pending_runs()
        was_credit = self.policy.uses_credit
        self.admission.policy, self.mode = policy, mode
        self.completion.confirm_all = policy.uses_credit
        if policy.uses_credit and not was_credit:
            self.credit.restart_all()
        for state in self.producers.values():
            state.credit_dirty = True

    def set_queue_discipline(self, name: str, now: float, quiet: bool = False) -> None:
        """Choose what the worker takes next and what it drops at dequeue (Module 19,
        ``disciplines.py``); ``fifo`` is the buffer's own order."""
        rate = self.service.effective_rate
        service_time = 0.0 if math.isinf(rate) else 1.0 / rate
        discipline = build_discipline(name, service_time, **self.config.discipline_options())
        self.buffer.dequeue = None if name == "fifo" else discipline
        self.queue_discipline = discipline
        if not quiet:
            self.log(now, f"queue discipline switched to {name}")

    def use_discipline_file(self, discipline: Any, now: float) -> None:
        """Serve through a person's discipline (``--discipline-file``) instead of a named one."""
        self.queue_discipline = FromFile(discipline)
        self.buffer.dequeue = self.queue_discipline
        self.log(now, "queue discipline from a file")

    def send_control(self, body: Dict[str, Any], now: float, note: str) -> int:
        """Queue one CONTROL frame (a live change: rate, spike) to every active producer and
        log ``note`` if any was there; returns how many producers it went to."""
        frame = protocol.encode_json(protocol.CONTROL, body)
        active = [s.peer for s in self.producers.values() if s.active]
        self._outgoing.extend((peer, frame) for peer in active)
        if active:
            self.log(now, note)
        return len(active)

    def set_slowdown(self, factor: float, now: float) -> None:
        """Make every service ``factor`` times longer (1 is full speed)."""
        self.service.slowdown = factor
        if factor == 1.0:
            self.log(now, "worker back to full speed")
        else:
            self.log(now, f"worker slowed down x{factor:g}")

    def stall(self, seconds: float, now: float) -> None:
        """Freeze the worker for ``seconds``: nothing starts or finishes meanwhile."""
        self.worker.stall(now, seconds)
        self.log(now, f"worker stalled for {seconds:g} s")

    def active_producers(self) -> int:
        return sum(1 for s in self.producers.values() if s.active)

    def observe(self, now: float, rss_mb: float) -> Optional[str]:
        """Feed the measured load to the policy; returns a stop reason if memory ran out."""
        self.policy.observe(self.load_signals(now, rss_mb), now)
        if rss_mb > self.config.max_memory_mb and self.stopped_by is None:
            self.stopped_by = "memory_guard"
            self.log(
                now,
                f"memory guard: RSS {round_up(rss_mb):.1f} MB > {self.config.max_memory_mb:g} MB"
                " -- this is where a real service would be OOM-killed",
            )
            return self.stopped_by
        return None

    def load_signals(self, now: float, rss_mb: float) -> LoadSignals:
        rates = self.stats.rates
        return LoadSignals(
            measured_rate_per_s=self.completion.measured_rate(now),
            arrival_per_s=rates["received"].rate(now),
            processed_per_s=rates["processed"].rate(now),
            service_rate_per_s=self.service.effective_rate,
            depth=self.buffer.depth,
            capacity=self.buffer.capacity,
            oldest_age_s=self.buffer.oldest_age(now),
            queue_wait_p99_s=self.completion.queue_wait_recent.merged(now).percentile(99),
            rss_mb=rss_mb,
            round_trip_s=self.round_trip.recent(now),
            in_flight=self.in_flight(),
        )

    def in_flight(self) -> int:
        """What the window bounds: messages held plus what producers may still send (credit
        outstanding; in pull mode, requested and not yet received)."""
        if self.policy.uses_demand:
            return self.buffer.depth + self.pull.outstanding()
        promised = self.credit.promised() if self.policy.uses_credit else 0
        return self.buffer.depth + promised

    def log(self, now: float, text: str) -> None:
        self.events.append((now, text))

    # -- reports ------------------------------------------------------------------------------
    def totals(self) -> ConsumerCounts:
        states = [s.counts for s in self.producers.values()]
        return sum_consumer_counts([self.stats.retired] + states)

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
        """Everything a dashboard shows, as plain JSON-able data (``consumer_report.py``)."""
        return consumer_report.snapshot(self, now, rss_mb, cpu_pct)

    def summary(self, now: float) -> Dict[str, Any]:
        """The ``--json`` object printed when the consumer stops."""
        return consumer_report.summary(self, now)

    # -- internals ----------------------------------------------------------------------------
    def _producer(self, peer: bytes, now: float, ordinal: int = 0) -> ProducerState:
        state = self.producers.get(peer)
        if state is None:
            if len(self.producers) >= MAX_PRODUCERS:
                retire_one(self.producers, self.stats.retired)
            state = self.producers[peer] = ProducerState(peer, now)
            # Credit is counted in the producer's own record ordinals, which survive our
            # restarts and mode switches: start where the producer is.
            self.credit.start_at(state, ordinal)
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
        self.credit.start_at(state, ordinal)
        self.pull.restart(state.peer)
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
            self._grant_credit(now)
        welcome = consumer_report.welcome(self, state, now)
        self._outgoing.append((state.peer, protocol.encode_json(protocol.WELCOME, welcome)))
        if self.policy.uses_demand:  # after the WELCOME, so the producer knows it is pull mode
            self._outgoing.extend(self.pull.frames(self.admission.limit()))

    def _on_data(
        self, state: ProducerState, records: List[protocol.Record], first_ordinal: int, now: float
    ) -> None:
        """Judge a batch of records that arrived together at ``now``: the lab's hot path."""
        self.completion.run(now)  # the rule of service.py: advance before pushing at `now`
        admission = self.admission
        if self.fast_paths and admission.finishes_instantly(state, first_ordinal + len(records)):
            per_class = admission.accept_all(state, records, first_ordinal, now)
            self.completion.finish_on_arrival(state, records, per_class, now)
        else:
            admission.judge_batch(state, records, first_ordinal, now)
        if self.policy.uses_credit:
            self.round_trip.received(state, now)

    def _frame_pending_runs(self) -> None:
        """Every producer's pending runs into VERDICTS frames under the current limit."""
        self._outgoing.extend(verdict_frames(self.producers, self.policy.uses_credit))

    def _fit_window(self) -> None:
        """Bring the buffer's capacity to the window asked for (``config.capacity``), but
        never below what is in flight: a producer that sent against its credit or demand
        must find room."""
        buffer, target = self.buffer, self.config.capacity
        if buffer.capacity is not None and buffer.capacity != target:
            buffer.capacity = max(target, min(buffer.capacity, self.in_flight()))

    def _grant_credit(self, now: float) -> None:
        granted = self.credit.grant(self.admission.limit(), self.buffer.depth)
        self.round_trip.granted(granted, now)

    def _expire_producers(self, now: float) -> None:
        horizon = now - self.config.producer_timeout_s
        for state in self.producers.values():
            if state.active and state.last_seen < horizon:
                self._deactivate(state, now, f"silent for {self.config.producer_timeout_s:g} s")

    def _deactivate(self, state: ProducerState, now: float, why: str) -> None:
        if state.active:
            state.active = False
            self.log(now, f"producer {state.name} {why}; its credit is taken back")
        self.credit.take_back(state)
        if self.policy.uses_credit:
            self._grant_credit(now)

    def _count_malformed(self, reason: str) -> None:
        self.malformed += 1
        if len(self.malformed_reasons) < 32 or reason in self.malformed_reasons:
            self.malformed_reasons[reason] = self.malformed_reasons.get(reason, 0) + 1
