"""The consumer's bounded buffer: depth counts waiting + in service, never above capacity."""

from __future__ import annotations

import pytest

from lab.core.buffer import UNBOUNDED_FREE_SLOTS, Buffer, BufferFull, Message


def msg(seq: int, at: float = 0.0, priority: int = 0, producer: bytes = b"p") -> Message:
    return Message(producer, seq, priority=priority, enqueued_at=at)


def fill(buf: Buffer, seqs, at: float = 0.0, priority: int = 0) -> None:
    for seq in seqs:
        buf.push(msg(seq, at, priority))


def test_docstring_quick_facts():
    buf = Buffer(capacity=2)
    buf.push(msg(1, 0.0))
    buf.push(msg(2, 0.1))
    assert (buf.depth, buf.is_full) == (2, True)
    assert buf.start_next().seq == 1
    assert (buf.depth, buf.waiting) == (2, 1)
    assert buf.finish().seq == 1
    assert (buf.depth, buf.waiting, len(buf)) == (1, 1, 1)


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_must_be_at_least_one(capacity):
    with pytest.raises(ValueError):
        Buffer(capacity)


def test_unknown_discipline_is_rejected():
    with pytest.raises(ValueError):
        Buffer(3, discipline="lifo")


def test_push_on_full_buffer_raises_and_changes_nothing():
    buf = Buffer(3)
    fill(buf, range(3))
    with pytest.raises(BufferFull):
        buf.push(msg(99))
    assert buf.depth == 3
    assert buf.waiting == 3
    assert [buf.start_next().seq] == [0]


def test_in_service_message_counts_against_capacity():
    buf = Buffer(2)
    fill(buf, [0, 1])
    buf.start_next()
    assert buf.is_full
    with pytest.raises(BufferFull):
        buf.push(msg(2))
    buf.finish()
    assert buf.free_slots() == 1
    buf.push(msg(2))
    assert (buf.depth, buf.waiting, buf.in_service) == (2, 2, None)


def test_free_slots_and_fill_ratio_are_exact():
    buf = Buffer(4)
    assert (buf.free_slots(), buf.fill_ratio(), buf.is_full) == (4, 0.0, False)
    fill(buf, range(3))
    assert (buf.free_slots(), buf.fill_ratio()) == (1, 0.75)
    buf.start_next()
    assert (buf.free_slots(), buf.fill_ratio()) == (1, 0.75)


def test_unbounded_buffer_never_fills():
    buf = Buffer(None)
    fill(buf, range(10_000))
    assert buf.depth == 10_000
    assert not buf.is_full
    assert buf.free_slots() == UNBOUNDED_FREE_SLOTS
    assert buf.fill_ratio() == 0.0


def test_fifo_serves_in_arrival_order_whatever_the_priority():
    buf = Buffer(10)
    for seq, prio in [(0, 2), (1, 0), (2, 1), (3, 0)]:
        buf.push(msg(seq, priority=prio))
    served = []
    while buf.waiting:
        served.append(buf.start_next().seq)
        buf.finish()
    assert served == [0, 1, 2, 3]
    assert buf.waiting_by_class() == [0]


def test_priority_serves_lowest_class_first_then_arrival_order():
    buf = Buffer(10, discipline="priority")
    for seq, prio in [(0, 2), (1, 0), (2, 1), (3, 0), (4, 2), (5, 1)]:
        buf.push(msg(seq, priority=prio))
    assert buf.waiting_by_class() == [2, 2, 2]
    served = []
    while buf.waiting:
        served.append(buf.start_next().seq)
        buf.finish()
    assert served == [1, 3, 2, 5, 0, 4]


def test_priority_out_of_range_is_clamped_to_the_nearest_class():
    buf = Buffer(10, discipline="priority", priority_classes=3)
    buf.push(msg(0, priority=-5))
    buf.push(msg(1, priority=200))
    assert buf.waiting_by_class() == [1, 0, 1]


def test_start_next_and_finish_misuse():
    buf = Buffer(3)
    assert buf.start_next() is None
    with pytest.raises(RuntimeError):
        buf.finish()
    fill(buf, [0, 1])
    buf.start_next()
    with pytest.raises(RuntimeError):
        buf.start_next()


def test_evict_oldest_takes_the_oldest_waiting_never_the_one_in_service():
    buf = Buffer(3)
    fill(buf, [0, 1, 2])
    assert buf.start_next().seq == 0
    victim = buf.evict_oldest()
    assert victim.seq == 1
    assert buf.in_service.seq == 0
    assert (buf.depth, buf.waiting) == (2, 1)
    assert buf.evict_oldest().seq == 2
    assert buf.evict_oldest() is None  # only the message in service is left
    assert (buf.depth, buf.in_service.seq) == (1, 0)


def test_evict_oldest_under_priority_takes_from_the_least_important_class():
    buf = Buffer(10, discipline="priority")
    for seq, prio in [(0, 0), (1, 1), (2, 2), (3, 2), (4, 1)]:
        buf.push(msg(seq, priority=prio))
    assert [buf.evict_oldest().seq for _ in range(3)] == [2, 3, 1]
    assert buf.evict_oldest(min_class=1).seq == 4
    assert buf.evict_oldest(min_class=1) is None  # class 0 is protected
    assert buf.evict_oldest().seq == 0


def test_oldest_waiting_and_its_age():
    buf = Buffer(10, discipline="priority")
    assert buf.oldest_waiting() is None
    assert buf.oldest_age(5.0) == 0.0
    buf.push(msg(0, at=2.0, priority=0))
    buf.push(msg(1, at=1.0, priority=2))
    assert buf.oldest_waiting().seq == 1
    assert buf.oldest_age(3.5) == 2.5
    assert buf.oldest_age(0.0) == 0.0  # never negative


def test_oldest_age_ignores_the_message_in_service():
    buf = Buffer(10)
    fill(buf, [0], at=1.0)
    buf.push(msg(1, at=3.0))
    buf.start_next()
    assert buf.oldest_age(4.0) == 1.0


def test_drain_returns_waiting_then_in_service_and_empties():
    buf = Buffer(5, discipline="priority")
    buf.push(msg(0, priority=1))
    buf.push(msg(1, priority=0))
    buf.push(msg(2, priority=2))
    assert buf.start_next().seq == 1
    assert [m.seq for m in buf.drain()] == [0, 2, 1]
    assert (buf.depth, buf.waiting, buf.in_service) == (0, 0, None)
    assert buf.free_slots() == 5


def test_message_repr_and_fields():
    m = Message(b"alice", 7, due=1.5, sent=1.75, priority=2, attempt=1, payload=b"xy")
    assert (m.producer, m.seq, m.due, m.sent, m.priority, m.attempt, m.payload) == (
        b"alice",
        7,
        1.5,
        1.75,
        2,
        1,
        b"xy",
    )
    assert m.started_at is None
    assert "seq=7" in repr(m)
