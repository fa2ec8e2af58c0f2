"""Queue disciplines (Module 19) and goodput in the consumer core, exact, in a fake clock."""

from __future__ import annotations

import math
from collections import deque
from typing import Deque, List

import pytest

from lab.core import protocol
from lab.core.buffer import Message
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.consumer_core import ConsumerCore
from lab.core.disciplines import (
    AdaptiveLifo,
    CoDel,
    DeadlineDrop,
    Discipline,
    Lifo,
    build_discipline,
)
from lab.core.producer_core import ProducerCore
from lab.core.protocol import Record


def queue_of(n: int, at: float = 0.0, deadline: float = math.inf) -> Deque[Message]:
    return deque(Message(b"p", seq, enqueued_at=at, deadline=deadline) for seq in range(n))


def serve_all(discipline: Discipline, queue: Deque[Message], now: float) -> List[int]:
    order = []
    while queue:
        message, dropped = discipline.pick(queue, now)
        assert dropped == []
        order.append(message.seq)
    return order


def test_fifo_serves_oldest_first_and_lifo_newest_first():
    assert serve_all(Discipline(), queue_of(4), 1.0) == [0, 1, 2, 3]
    assert serve_all(Lifo(), queue_of(4), 1.0) == [3, 2, 1, 0]


def test_lifo_never_takes_a_message_that_arrives_after_now():
    queue = queue_of(3)
    queue.append(Message(b"p", 9, enqueued_at=2.0))
    message, _ = Lifo().pick(queue, 1.0)
    assert message.seq == 2 and [m.seq for m in queue] == [0, 1, 9]


def test_adaptive_lifo_is_fifo_while_short_and_lifo_when_long():
    discipline = AdaptiveLifo(short=2)
    queue = queue_of(5)
    picks = [discipline.pick(queue, 1.0)[0].seq for _ in range(5)]
    # 5 and 4 waiting: above 2, LIFO; then 2 and 1 waiting: FIFO again
    assert picks == [4, 3, 2, 0, 1]
    assert discipline.switches == 2 and discipline.status()["lifo"] is False


def test_deadline_drop_drops_what_is_past_its_deadline_at_dequeue():
    queue = deque(
        [
            Message(b"p", 0, enqueued_at=0.0, deadline=0.5),
            Message(b"p", 1, enqueued_at=0.0, deadline=0.75),
            Message(b"p", 2, enqueued_at=0.0, deadline=1.0),
        ]
    )
    message, dropped = DeadlineDrop().pick(queue, 1.0)
    assert message.seq == 2 and [m.seq for m in dropped] == [0, 1]
    assert DeadlineDrop().pick(deque(), 1.0) == (None, [])


def test_deadline_drop_also_drops_what_would_finish_too_late():
    queue = deque(Message(b"p", s, enqueued_at=0.0, deadline=d) for s, d in ((0, 1.1), (1, 1.3)))
    message, dropped = DeadlineDrop(service_time_s=0.25).pick(queue, 1.0)
    assert message.seq == 1 and [m.seq for m in dropped] == [0]


def codel_run(codel: CoDel, queue: Deque[Message], times: List[float]):
    served, drops = [], []
    for now in times:
        message, dropped = codel.pick(queue, now)
        served.append(message.seq)
        drops.extend((now, m.seq) for m in dropped)
    return served, drops


def test_codel_follows_the_papers_state_machine():
    """Target 0.25 s, interval 1 s, everything enqueued at 0, one dequeue per 0.125 s from
    0.25 s (binary fractions: the times are exact)."""
    codel = CoDel(target_s=0.25, interval_s=1.0)
    queue = queue_of(60)
    # 0.25: above target for the first time, first_above_time = 1.25; ok_to_drop from 1.25,
    # but the first drop needs now - first_above_time >= interval: 2.25.
    served, drops = codel_run(codel, queue, [0.25 + 0.125 * k for k in range(16)])
    assert served == list(range(16)) and drops == [] and not codel.dropping
    served, drops = codel_run(codel, queue, [2.25])
    assert drops == [(2.25, 16)] and served == [17]
    assert codel.dropping and codel.count == 1 and codel.drop_next == 3.25
    served, drops = codel_run(codel, queue, [2.375 + 0.125 * k for k in range(7)])
    assert served == list(range(18, 25)) and drops == []
    served, drops = codel_run(codel, queue, [3.25])  # drop_next reached: second drop
    assert drops == [(3.25, 25)] and served == [26] and codel.count == 2
    assert codel.drop_next == pytest.approx(3.25 + 1 / math.sqrt(2), abs=1e-12)
    served, drops = codel_run(codel, queue, [3.375 + 0.125 * k for k in range(5)] + [4.0])
    assert drops == [(4.0, 32)] and served == [27, 28, 29, 30, 31, 33] and codel.count == 3
    assert codel.drop_next == pytest.approx(3.25 + 1 / math.sqrt(2) + 1 / math.sqrt(3))


def test_codel_leaves_dropping_when_a_sojourn_falls_below_target():
    codel = CoDel(target_s=0.25, interval_s=1.0)
    queue = queue_of(40)
    codel_run(codel, queue, [0.25 + 0.125 * k for k in range(17)])  # the first drop at 2.25
    assert codel.dropping
    fresh = deque([Message(b"p", 100, enqueued_at=2.3), Message(b"p", 101, enqueued_at=2.3)])
    message, dropped = codel.pick(fresh, 2.375)  # sojourn 0.075 < target
    assert message.seq == 100 and dropped == [] and not codel.dropping
    assert codel.first_above_time is None


def test_codel_reentering_soon_after_resumes_near_the_last_count():
    codel = CoDel(target_s=0.25, interval_s=1.0)
    codel.count, codel.drop_next, codel.first_above_time = 6, 4.5, 3.0
    queue = queue_of(10)
    # ok_to_drop (now 5.0 >= first_above_time) and now - drop_next = 0.5 < interval
    message, dropped = codel.pick(queue, 5.0)
    assert [m.seq for m in dropped] == [0] and message.seq == 1
    assert codel.count == 4 and codel.drop_next == 5.0 + 1.0 / 2.0


def test_build_discipline_scales_codel_to_the_service_time():
    codel = build_discipline("codel", 0.01)
    assert (codel.target, codel.interval) == (0.005, 0.05)  # half a service time, 10 targets
    instant = build_discipline("codel", 0.0)
    assert (instant.target, instant.interval) == (0.005, 0.1)
    assert build_discipline("codel", 0.01, codel_target_s=0.2).target == 0.2
    with pytest.raises(ValueError, match="unknown discipline"):
        build_discipline("random", 0.01)


# -- in the consumer core ---------------------------------------------------------------------
def overload(discipline: str) -> ConsumerCore:
    """20 messages at t = 0 with a 0.5 s deadline into a worker of 8 msg/s (0.125 s each),
    then time runs to 5 s."""
    config = ConsumerConfig(capacity=100, process_rate=8.0, queue_discipline=discipline)
    core = ConsumerCore(config, 0.0, session="s1")
    records = [Record(seq, 0.0, 0.0) for seq in range(20)]
    core.on_frame(b"alice", protocol.encode_data(records, 0, deadline_ms=500), 0.0)
    for k in range(1, 41):
        core.advance(k * 0.125)
    return core


def test_fifo_serves_everything_but_most_of_it_too_late():
    totals = overload("fifo").totals()
    # finishes at 0.125, 0.25, 0.375, 0.5 are within the deadline; 16 are waste
    assert (totals.processed, totals.goodput, totals.wasted, totals.dequeue_dropped) == (
        20,
        4,
        16,
        0,
    )


def test_deadline_drop_wastes_nothing_and_drops_the_rest_at_dequeue():
    core = overload("deadline-drop")
    totals = core.totals()
    # at 0.5 the fifth could finish only at 0.625, past its deadline: it and the other 15
    # are dropped unserved
    assert (totals.processed, totals.goodput, totals.wasted) == (4, 4, 0)
    assert (totals.dropped, totals.dequeue_dropped, totals.evicted) == (16, 16, 0)
    assert core.identity_errors() == []
    runs = [protocol.decode_verdicts(f) for _, f in core.take_outgoing()]
    evicted = [(r.first_seq, r.count) for v in runs for r in v.runs if r.kind == protocol.EVICTED]
    assert evicted == [(4, 16)]
    summary = core.summary(5.0)
    assert (summary["goodput"], summary["wasted"], summary["dequeue_dropped"]) == (4, 0, 16)


def test_without_a_deadline_everything_processed_is_goodput():
    config = ConsumerConfig(capacity=100, process_rate=8.0, queue_discipline="deadline-drop")
    core = ConsumerCore(config, 0.0, session="s1")
    core.on_frame(b"a", protocol.encode_data([Record(s, 0.0, 0.0) for s in range(6)]), 0.0)
    core.advance(1.0)
    totals = core.totals()
    assert (totals.processed, totals.goodput, totals.wasted, totals.dropped) == (6, 6, 0, 0)


def test_the_deadline_is_taken_from_due_and_sent_on_the_producers_clock():
    config = ConsumerConfig(capacity=10, process_rate=8.0)
    core = ConsumerCore(config, 100.0, session="s1")
    # due 0.25 s before sending, 0.5 s deadline: 0.25 s left on arrival at 100.0
    record = Record(0, 1_700_000_000.0, 1_700_000_000.25)
    core.on_frame(b"a", protocol.encode_data([record], 0, deadline_ms=500), 100.0)
    assert core.buffer.in_service.deadline == pytest.approx(100.25)


def test_a_version_1_hello_gets_an_error_welcome_a_version_1_reader_can_read():
    core = ConsumerCore(ConsumerConfig(), 0.0, session="s1")
    old_hello = b"BP\x01\x01" + b'{"producer":"old","sent":0}'
    core.on_frame(b"old", old_hello, 0.0)
    [(peer, frame)] = core.take_outgoing()
    assert peer == b"old" and frame[:4] == b"BP\x01\x02" and core.malformed == 1
    error = protocol.welcome_error(frame)
    assert "protocol version 2" in error and "spoke 1" in error
    producer = ProducerCore(ProducerConfig(), 0.0)
    producer.on_frame(frame, 0.0)
    assert producer.refused_by_consumer == error
