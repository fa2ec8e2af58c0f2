"""The consumer's admission: each arriving record judged, and the decision carried out.

Theory of operation
-------------------
State: the overflow policy in force (``policies.py``), the buffer it guards, and the
credit ledger (``credit.py``) it consults in block mode. Rules, for each DATA record:

* the policy decides (in a credit mode, only for records within their producer's credit;
  a record over credit may use only unpromised room, else it is dropped). Its answer is
  normalised once (``policies.normalise``), so old policy files that return plain strings
  still work;
* :data:`OUTCOMES` is the one table from a decision's kind to what it does: the verdict
  sent back, the counter it moves (per producer and per class), the rate it feeds, and
  whether the run carries the shed's retry-after (clamped to what the wire holds);
* an accept pushes the message; an accept-evicting-oldest first evicts a waiting one, which
  moves from accepted to dropped and is reported to its producer as EVICTED;
* with ``reject_cost``, every refusal takes that fraction of a service time from the worker;
* an idle worker takes what just arrived before the next record is judged (the rule of
  ``service.py``), so drop-oldest can never evict the message that was just accepted.

:meth:`Admission.accept_all` is the zero-service-time shortcut (every record accepted and,
by ``Completion.finish_on_arrival``, finished at once); a test proves it equal to the
plain path, record by record.
"""

from __future__ import annotations

import math
from typing import Dict, List, NamedTuple, Sequence

from lab.core import protocol
from lab.core.accounting import MAX_CLASSES
from lab.core.buffer import Buffer, Message
from lab.core.completion import Completion
from lab.core.consumer_stats import ConsumerStats
from lab.core.credit import CreditLedger
from lab.core.peers import ProducerState
from lab.core.policies import (
    ACCEPT,
    ACCEPT_EVICTING_OLDEST,
    DROP,
    KINDS,
    Decision,
    OverflowPolicy,
    normalise,
)
from lab.core.service import ServiceModel


class Outcome(NamedTuple):
    """What one decision kind does."""

    verdict: int  # the VerdictKind sent on the wire
    counter: str  # the ConsumerCounts and ClassCounts field it moves
    rate: str  # the rate window it feeds (ConsumerStats.rates)
    accepts: bool  # the message goes into the buffer
    carries_retry: bool  # the run says when to retry


OUTCOMES: Dict[str, Outcome] = {
    ACCEPT.kind: Outcome(protocol.ACCEPTED, "accepted", "accepted", True, False),
    ACCEPT_EVICTING_OLDEST.kind: Outcome(protocol.ACCEPTED, "accepted", "accepted", True, False),
    DROP.kind: Outcome(protocol.DROPPED, "dropped", "dropped", False, False),
    "sample-out": Outcome(protocol.SAMPLED_OUT, "sampled_out", "sampled_out", False, False),
    "shed": Outcome(protocol.SHED, "shed", "shed", False, True),
}
assert tuple(OUTCOMES) == KINDS, "every decision kind has one row"
_EVICTING = ACCEPT_EVICTING_OLDEST.kind


class Admission:
    """Judges arriving records. See the module docstring."""

    def __init__(
        self,
        policy: OverflowPolicy,
        buffer: Buffer,
        credit: CreditLedger,
        completion: Completion,
        stats: ConsumerStats,
        service: ServiceModel,
        reject_cost: float,
    ) -> None:
        self.policy = policy
        self.buffer = buffer
        self.credit = credit
        self.completion = completion
        self.stats = stats
        self.service = service
        self.reject_cost = reject_cost
        self.budget_s = 0.0  # the frame being judged: its records' deadline after due (0: none)
        self.producers = credit.producers
        classes = stats.classes
        self._class_received = classes.received
        self._class_counter = {kind: getattr(classes, o.counter) for kind, o in OUTCOMES.items()}
        # OUTCOMES as plain tuples, for the hot path: verdict, accepts, evicts, retries.
        self._actions = {
            kind: (o.verdict, o.accepts, kind == _EVICTING, o.carries_retry)
            for kind, o in OUTCOMES.items()
        }

    def limit(self) -> int:
        """How many messages the buffer may hold now: the policy's limit, within capacity."""
        buffer = self.buffer
        return min(self.policy.admission_limit(buffer), buffer.free_slots() + buffer.depth)

    def judge_batch(
        self, state: ProducerState, records: Sequence[protocol.Record], first: int, now: float
    ) -> None:
        """Judge records that arrived together at ``now``, in order, and let the worker run
        between them by the rule of ``service.py``; rates are stamped once per batch."""
        stats = self.stats
        received_before = stats.classes.received[:]
        lost_before = stats.lost_by_class()
        tally = dict.fromkeys(KINDS, 0)
        judge = self.judge
        run_worker = self.completion.run
        state.next_ordinal = first
        instant = math.isinf(self.service.rate)
        buffer = self.buffer
        for record in records:
            tally[judge(state, record, now)] += 1
            # Zero service time: each message is done before the next one is looked at.
            # Otherwise an idle worker takes what just arrived before the next is judged.
            if instant or buffer.in_service is None:
                run_worker(now)
        if not instant:
            run_worker(now)
        count = len(records)
        if first + count > state.received_ordinal:
            state.received_ordinal = first + count
        state.rate_in.add(now, count)
        counts = state.counts
        counts.received += count
        rates = stats.rates
        rates["received"].add(now, count)
        for kind, n in tally.items():
            if n:
                outcome = OUTCOMES[kind]
                rates[outcome.rate].add(now, n)
                if not outcome.accepts:  # accepts are counted as they are pushed
                    setattr(counts, outcome.counter, getattr(counts, outcome.counter) + n)
        stats.add_class_rates("received", now, received_before, stats.classes.received)
        stats.add_class_rates("lost", now, lost_before, stats.lost_by_class())
        stats.note_depth(now, buffer.depth)

    def judge(self, state: ProducerState, record: protocol.Record, now: float) -> str:
        """Decide one record and carry the decision out; returns the decision's kind. The
        producer's received and refusal counts are left to the caller (``judge_batch``
        adds them from its tally, once per batch: this is the hot path)."""
        message = Message(
            state.peer,
            record.seq,
            record.due,
            record.sent,
            record.priority,
            record.attempt,
            record.payload,
            now,
        )
        if self.budget_s > 0:
            # The caller's deadline on our clock: the time it had left when the frame was
            # sent (both stamps on the producer's clock, so no clock sync is needed).
            message.deadline = now + record.due + self.budget_s - record.sent
        policy = self.policy
        buffer = self.buffer
        if not policy.uses_credit or self.credit.next_record_within(state):
            decision = policy.decide(message, buffer, now)
        elif self.credit.admit_over_credit(state, self.limit(), buffer.depth):
            decision = ACCEPT
        else:
            decision = DROP
        if type(decision) is not Decision or decision[1] is None:
            decision = normalise(decision, policy)
        kind = decision[0]
        cls = record.priority if record.priority < MAX_CLASSES else MAX_CLASSES - 1
        self._class_received[cls] += 1
        self._class_counter[kind][cls] += 1
        verdict, accepts, evicts, retries = self._actions[kind]
        if accepts:
            if evicts:
                victim = buffer.evict_oldest()
                if victim is not None:
                    self._evicted(victim, now)
            buffer.push(message)
            stats = self.stats
            if buffer.depth > stats.max_depth:
                # Right after a push, before the worker can take anything: the deepest point.
                stats.max_depth = buffer.depth
            counts = state.counts
            counts.accepted += 1
            counts.depth += 1
            state.runs.add(verdict, record.seq)
            return kind
        if retries:
            retry = decision[1]
            if type(retry) is not int or not 0 <= retry <= protocol.MAX_RETRY_MS:
                retry = min(max(0, int(retry)), protocol.MAX_RETRY_MS)  # what the wire holds
            state.runs.add(verdict, record.seq, retry)
        else:
            state.runs.add(verdict, record.seq)
        if self.reject_cost > 0 and not math.isinf(self.service.rate):
            # Reading a request only to say no is not free.
            self.completion.worker.charge(now, self.reject_cost / self.service.effective_rate)
        return kind

    def _evicted(self, victim: Message, now: float) -> None:
        owner = self.producers.get(victim.producer)
        stats = self.stats
        counts = owner.counts if owner is not None else stats.retired
        counts.accepted -= 1
        counts.depth -= 1
        counts.dropped += 1
        counts.evicted += 1
        cls = min(victim.priority, MAX_CLASSES - 1)
        stats.classes.accepted[cls] -= 1
        stats.classes.dropped[cls] += 1
        stats.rates["dropped"].add(now)
        if owner is not None:
            owner.runs.add(protocol.EVICTED, victim.seq)

    # -- zero service time -------------------------------------------------------------------
    def finishes_instantly(self, state: ProducerState, ordinal_end: int) -> bool:
        """Zero service time and an idle worker: every message is done as it arrives, so
        each finds the buffer empty, and a policy that accepts whatever is below its limit
        (``pure_below_limit``) would accept them all, unless credit is exceeded."""
        worker = self.completion.worker
        policy = self.policy
        return (
            math.isinf(self.service.rate)
            and self.buffer.depth == 0
            and worker.stalled_until <= worker.free_at
            and policy.pure_below_limit
            and (not policy.uses_credit or ordinal_end <= state.credit_limit)
            and self.limit() > 0
        )

    def accept_all(
        self, state: ProducerState, records: Sequence[protocol.Record], first: int, now: float
    ) -> List[int]:
        """The admission half of zero service time: every record accepted (the completion
        half finishes them). Returns how many records each class had."""
        count = len(records)
        counts = state.counts
        counts.received += count
        counts.accepted += count
        counts.depth += count
        state.runs.extend(protocol.ACCEPTED, [record.seq for record in records])
        per_class = [0] * MAX_CLASSES
        priorities = [record.priority for record in records]
        if any(priorities):
            for priority in priorities:
                per_class[priority if priority < MAX_CLASSES else MAX_CLASSES - 1] += 1
        else:
            per_class[0] = count
        classes, stats = self.stats.classes, self.stats
        received_rates = stats.class_rates["received"]
        for cls, n in enumerate(per_class):
            if n:
                classes.received[cls] += n
                classes.accepted[cls] += n
                received_rates[cls].add(now, n)
        if first + count > state.received_ordinal:
            state.received_ordinal = first + count
        state.rate_in.add(now, count)
        for name in ("received", "accepted"):
            stats.rates[name].add(now, count)
        if count and not stats.max_depth:
            stats.max_depth = 1  # as _push: each was held for an instant
        return per_class
