"""The consumer's completions: what the worker finished, counted, timed and confirmed.

Theory of operation
-------------------
State: the queue waits (recent, in total and per class), the summed service times (the W
of Little's law), the messages that waited past ``wait_target_s`` (filed by the tenth of a
second they were accepted in), and ``confirm_all`` (block mode: every finished message is
confirmed to its producer). Rules, for each message the worker (``service.py``) finished:

* its producer's ``processed`` goes up and ``depth`` down (the ``retired`` row's, if the
  producer was forgotten meanwhile); so do its class's ``processed`` and processed rate;
* its queue wait (service start minus acceptance) goes into the histograms, stamped with
  the start of service; a seq lower than one already finished is *out of order*, unless it
  is a retry (``attempt > 0``);
* a PROCESSED confirmation is queued in block mode, or if the producer asked for them.

Two shortcuts keep the hot path cheap, each proven equal to the plain way by
``tests/unit/test_consumer_core.py`` (both are off when the core is built with
``fast_paths=False``): a batch whose services all start within one second goes into each
histogram with one call, and :meth:`Completion.finish_on_arrival` finishes a batch that
zero service time completes the instant it arrives without going through the buffer.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from typing import Deque, Dict, List, Optional, Sequence, Tuple

from lab.core import protocol
from lab.core.accounting import MAX_CLASSES
from lab.core.buffer import Buffer, Message
from lab.core.consumer_stats import ConsumerStats
from lab.core.metrics import RecentLatency
from lab.core.peers import ProducerState
from lab.core.policies import MEASURED_RATE_WINDOW_S
from lab.core.service import Worker

RATE_STAMP_S = 0.001  # completions closer than this share one stamp in the rate windows


class Completion:
    """Counts what the worker finishes. See the module docstring."""

    def __init__(
        self,
        worker: Worker,
        buffer: Buffer,
        producers: Dict[bytes, ProducerState],
        stats: ConsumerStats,
        started_at: float,
        wait_target_s: Optional[float],
        fast_paths: bool = True,
    ) -> None:
        self.worker = worker
        self.buffer = buffer
        self.producers = producers
        self.stats = stats
        self.started_at = started_at
        self.wait_target_s = wait_target_s
        self.fast_paths = fast_paths
        self.confirm_all = False  # block mode: the core sets it on every policy change
        self.queue_wait_recent = RecentLatency()
        self.class_wait = [RecentLatency() for _ in range(MAX_CLASSES)]
        self.service_seconds = 0.0  # summed service times of finished messages (Little's W)
        self.waited_past_target = 0
        self.late_by_accept: Dict[int, int] = {}  # tenth of a second accepted -> count
        # (time, processed, service seconds) marks of the last MEASURED_RATE_WINDOW_S
        self._speed_marks: Deque[Tuple[float, int, float]] = deque()
        self._measured_rate = worker.model.rate

    def run(self, now: float) -> None:
        """Complete what the worker finished by ``now``; count, time and confirm each one."""
        finished = self.worker.advance(self.buffer, now)
        if finished:
            self._count(finished)
        if self.buffer.dequeue_dropped:
            # After the completions, so the mean depth's clock only moves forward (the
            # depth between completions leaves out drops made in this call: approximate).
            self._count_dequeue_drops(self.buffer.take_dequeue_dropped(), now)

    def _count_dequeue_drops(self, dropped: List[Message], now: float) -> None:
        """The queue discipline dropped these at dequeue: each moves from accepted to
        dropped, as an eviction does, and its producer is told EVICTED."""
        stats = self.stats
        for message in dropped:
            owner = self.producers.get(message.producer)
            counts = owner.counts if owner is not None else stats.retired
            counts.accepted -= 1
            counts.depth -= 1
            counts.dropped += 1
            counts.dequeue_dropped += 1
            cls = min(message.priority, MAX_CLASSES - 1)
            stats.classes.accepted[cls] -= 1
            stats.classes.dropped[cls] += 1
            if owner is not None:
                owner.runs.add(protocol.EVICTED, message.seq)
        stats.rates["dropped"].add(now, len(dropped))
        stats.depth_mean.update(now, self.buffer.depth)

    def measured_rate(self, now: float) -> float:
        """The worker's speed as measured: what it finished over the service time that took,
        in the last MEASURED_RATE_WINDOW_S (the previous figure while nothing finished)."""
        marks = self._speed_marks
        marks.append((now, sum(self.stats.classes.processed), self.service_seconds))
        while len(marks) > 2 and marks[1][0] <= now - MEASURED_RATE_WINDOW_S:
            marks.popleft()
        done, busy = marks[-1][1] - marks[0][1], marks[-1][2] - marks[0][2]
        if done > 0 and busy > 0:
            self._measured_rate = done / busy
        return self._measured_rate

    def _count(self, finished: List[Tuple[Message, float]]) -> None:
        stats = self.stats
        wait_target = math.inf if self.wait_target_s is None else self.wait_target_s
        depth_update = stats.depth_mean.update
        producers, retired = self.producers, stats.retired
        confirm_all = self.confirm_all
        remaining = self.buffer.depth + len(finished)  # depth before the first completion
        stamp, stamped = finished[0][1], [0] * MAX_CLASSES
        class_processed = stats.classes.processed
        owner = None
        service_seconds = 0.0
        waits: List[float] = []
        wait_classes: List[int] = []
        late = 0
        for message, finished_at in finished:
            on_time = finished_at <= message.deadline
            late += not on_time
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
            if finished_at - stamp >= RATE_STAMP_S:
                self._add_processed_rates(stamp, stamped)
                stamp, stamped = finished_at, [0] * MAX_CLASSES
            stamped[cls] += 1
            if owner is None or owner.peer != message.producer:
                owner = producers.get(message.producer)
            if owner is None:
                retired.processed += 1
                retired.depth -= 1
                retired.goodput += on_time
                retired.wasted += not on_time
                continue
            counts = owner.counts
            counts.processed += 1
            counts.depth -= 1
            counts.goodput += on_time
            counts.wasted += not on_time
            seq = message.seq
            if seq <= owner.last_processed_seq:
                if message.attempt == 0:
                    owner.out_of_order += 1
            else:
                owner.last_processed_seq = seq
            if confirm_all or owner.wants_confirm:
                owner.confirmations.add(protocol.PROCESSED, seq)
        self._add_processed_rates(stamp, stamped)
        self._add_goodput_rates(stamp, len(finished) - late, late)
        self.service_seconds += service_seconds
        self._record_waits(finished, waits, wait_classes)

    def _add_goodput_rates(self, stamp: float, good: int, late: int) -> None:
        rates = self.stats.rates
        if good:
            rates["goodput"].add(stamp, good)
        if late:
            rates["wasted"].add(stamp, late)

    def _add_processed_rates(self, stamp: float, by_class: List[int]) -> None:
        windows = self.stats.class_rates["processed"]
        total = 0
        for cls, count in enumerate(by_class):
            if count:
                windows[cls].add(stamp, count)
                total += count
        self.stats.rates["processed"].add(stamp, total)

    def _record_waits(
        self, finished: List[Tuple[Message, float]], waits: List[float], classes: List[int]
    ) -> None:
        """Queue waits into the recent histograms, stamped with the start of service (as
        ``record(message.started_at, wait)`` would). Starts are in order (one worker), so
        a batch that starts within one whole second goes in with one call per histogram."""
        first, last = finished[0][0].started_at, finished[-1][0].started_at
        if not self.fast_paths or int(first // 1) != int(last // 1):
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

    def finish_on_arrival(
        self,
        state: ProducerState,
        records: Sequence[protocol.Record],
        per_class: List[int],
        now: float,
    ) -> None:
        """The completion half of zero service time: ``records`` (just accepted, ``per_class``
        of them in each class) were served and finished at ``now``, in order, waiting 0."""
        counts = state.counts
        counts.processed += len(records)
        counts.goodput += len(records)  # finished the instant they came: within any deadline
        counts.depth -= len(records)
        seqs = [record.seq for record in records]
        if self.confirm_all or state.wants_confirm:
            state.confirmations.extend(protocol.PROCESSED, seqs)
        if not seqs:
            pass
        elif seqs[0] > state.last_processed_seq and all(map(operator.lt, seqs, seqs[1:])):
            state.last_processed_seq = seqs[-1]  # in order, the common case: nothing to count
        else:
            last = state.last_processed_seq
            for record in records:
                if record.seq > last:
                    last = record.seq
                elif record.attempt == 0:
                    state.out_of_order += 1
            state.last_processed_seq = last
        stats = self.stats
        for cls, n in enumerate(per_class):
            if n:
                stats.classes.processed[cls] += n
                self.class_wait[cls].record(now, 0.0, n)
        self._add_processed_rates(now, per_class)
        self.stats.rates["goodput"].add(now, len(records))
        self.worker.free_at = now
        self.queue_wait_recent.record(now, 0.0, len(records))

    def _count_late(self, message: Message) -> None:
        """A message waited longer than ``wait_target_s``: counted, and filed under the tenth
        of a second (since the start) in which it was accepted, so a grader can tell the
        messages accepted before a slowdown was visible from those accepted after."""
        self.waited_past_target += 1
        key = int((message.enqueued_at - self.started_at) * 10)
        self.late_by_accept[key] = self.late_by_accept.get(key, 0) + 1
